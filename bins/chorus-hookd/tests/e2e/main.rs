//! End-to-end tests of the built `chorus-hookd` binary: real process, real
//! SQLite data directory, real HTTP on loopback, and a fake Discord that the
//! binary's twilight client reaches through `CHORUS_DISCORD_PROXY`.

mod cli;
mod crash;
mod docker;
mod fixtures;
mod follow;
mod interactions;
mod lifecycle;
mod migrate;
mod outage;
mod outgoing;
mod replicas;
mod rules_crash;
mod seeds;
mod slow;
mod support;
mod workflows;
