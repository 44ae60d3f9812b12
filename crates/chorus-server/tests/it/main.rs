//! chorus-server over real HTTP on loopback, a real SQLite file, and a real
//! twilight client talking to the testkit's fake Discord.

mod api;
mod backup;
mod config_files;
mod dashboard;
mod deploy;
mod example;
mod faults;
mod incoming;
mod outgoing;
mod rules;
mod snapshots_api;
mod support;
mod window_crash;
mod workflows;
