#![doc = include_str!("../README.md")]

mod alerts;
mod bitbucket;
mod ci;
mod docker;
mod generic;
mod github;
mod gitlab;
mod jira;
mod sentry;
mod services;
mod template;
mod util;

use chorus_core::{Message, Source};
use serde_json::Value;

pub use docker::event_type as docker_event_type;
pub use generic::format_generic;
pub use template::{TEMPLATE_MAX, TemplateError, render_context, render_template, validate_template};

/// A sender Chorus has a formatter for. Several have no signature scheme of
/// their own (Docker Hub, Jenkins, Alertmanager, Grafana) and arrive at
/// `generic` or `none` hooks, where they are recognised by their payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Service {
    /// GitHub, GitHub Actions included.
    Github,
    /// GitLab, GitLab CI included.
    Gitlab,
    /// Jira Cloud and Server.
    Jira,
    /// Sentry integration webhooks.
    Sentry,
    /// Slack Events API.
    Slack,
    /// Stripe events.
    Stripe,
    /// Docker Hub repository pushes.
    DockerHub,
    /// Jenkins Notification plugin.
    Jenkins,
    /// CircleCI webhooks.
    CircleCi,
    /// Prometheus Alertmanager.
    Alertmanager,
    /// Grafana unified alerting.
    Grafana,
    /// Bitbucket Cloud.
    Bitbucket,
    /// Gitea and Forgejo, whose payloads follow GitHub's.
    Gitea,
    /// A Docker engine's events, read by the watcher.
    Docker,
}

impl Service {
    /// Every service, in documentation order.
    pub const ALL: [Service; 14] = [
        Service::Github,
        Service::Gitlab,
        Service::Jira,
        Service::Sentry,
        Service::Slack,
        Service::Stripe,
        Service::DockerHub,
        Service::Jenkins,
        Service::CircleCi,
        Service::Alertmanager,
        Service::Grafana,
        Service::Bitbucket,
        Service::Gitea,
        Service::Docker,
    ];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Github => "github",
            Service::Gitlab => "gitlab",
            Service::Jira => "jira",
            Service::Sentry => "sentry",
            Service::Slack => "slack",
            Service::Stripe => "stripe",
            Service::DockerHub => "dockerhub",
            Service::Jenkins => "jenkins",
            Service::CircleCi => "circleci",
            Service::Alertmanager => "alertmanager",
            Service::Grafana => "grafana",
            Service::Bitbucket => "bitbucket",
            Service::Gitea => "gitea",
            Service::Docker => "docker",
        }
    }

    /// The service a source's own payloads come from, if it is one.
    pub fn of(source: Source) -> Option<Service> {
        Some(match source {
            Source::Github => Service::Github,
            Source::Gitlab => Service::Gitlab,
            Source::Jira => Service::Jira,
            Source::Slack => Service::Slack,
            Source::Stripe => Service::Stripe,
            Source::Sentry => Service::Sentry,
            Source::Circleci => Service::CircleCi,
            Source::Bitbucket => Service::Bitbucket,
            Source::Gitea => Service::Gitea,
            Source::Docker => Service::Docker,
            Source::Standard | Source::Chorus | Source::Generic | Source::None => return None,
        })
    }
}

/// Format a payload of `service`; `None` when it is not a payload this
/// formatter knows (the generic summary then applies).
pub fn format_service(service: Service, event_type: &str, payload: &Value) -> Option<Message> {
    match service {
        Service::Github => github::format(event_type, payload),
        Service::Gitlab => gitlab::format(event_type, payload),
        Service::Jira => jira::format(event_type, payload),
        Service::Sentry => sentry::format(event_type, payload),
        Service::Slack => services::slack(event_type, payload),
        Service::Stripe => services::stripe(event_type, payload),
        Service::DockerHub => services::dockerhub(event_type, payload),
        Service::Jenkins => ci::jenkins(event_type, payload),
        Service::CircleCi => ci::circleci(event_type, payload),
        Service::Alertmanager => alerts::format(false, event_type, payload),
        Service::Grafana => alerts::format(true, event_type, payload),
        Service::Bitbucket => bitbucket::format(event_type, payload),
        Service::Docker => docker::format(event_type, payload),
        Service::Gitea => github::format(event_type, payload).map(|mut m| {
            m.footer = Some(format!("Gitea · {event_type}"));
            m
        }),
    }
}

/// Format a parsed payload of `source` and `event_type` as a message.
pub fn format(source: Source, event_type: &str, payload: &Value) -> Message {
    Service::of(source)
        .and_then(|service| format_service(service, event_type, payload))
        .unwrap_or_else(|| format_generic(source, event_type, payload))
}

/// Format a body that is not JSON (e.g. Slack's form-encoded slash commands).
pub fn format_text(source: Source, event_type: &str, body: &[u8]) -> Message {
    let text = String::from_utf8_lossy(body);
    let mut message = Message::titled(format!("{} {event_type}", util::source_label(source)));
    message.description = util::truncate(&text, 1800);
    message
}
