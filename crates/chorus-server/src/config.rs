//! One typed configuration: a TOML file overridden by `CHORUS_*` variables,
//! validated once at start.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;

/// The configuration could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why (with line and column).
        #[source]
        source: toml::de::Error,
    },
    /// A value is out of range or malformed.
    #[error("invalid {key}: {message}")]
    Invalid {
        /// The config key (or `CHORUS_*` variable).
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Chorus's configuration. Field names are the TOML keys; each can be set by
/// `CHORUS_<KEY>` in the environment, which wins over the file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// SQLite database, master key, generated API token, `config/webhooks/`.
    pub data_dir: PathBuf,
    /// `sqlite://…` path or `postgres://…`; default: `chorus.db` in the data dir.
    pub database_url: Option<String>,
    /// Base64 of 32 bytes; default: a 0600 key file in the data dir.
    pub master_key: Option<String>,
    /// Admin bearer token; default: generated on first start into the data dir.
    pub api_token: Option<String>,
    /// Base of the hook URLs shown to users; default `http://<listen>`.
    pub public_url: Option<String>,
    /// Ingress body limit in bytes.
    pub max_body_bytes: usize,
    /// Discord bot token.
    pub discord_token: Option<String>,
    /// Hex Ed25519 key for `/interactions`.
    pub discord_public_key: Option<String>,
    /// Application id, for registering slash commands.
    pub discord_application_id: Option<String>,
    /// A role whose members may manage hooks from Discord without the
    /// Manage Webhooks permission.
    pub discord_manager_role: Option<String>,
    /// Register the slash commands in this guild only (instantly) instead of
    /// globally.
    pub discord_guild_id: Option<String>,
    /// `ws://` or `wss://` URL of a gateway stand-in (chorus-bot).
    pub discord_gateway: Option<String>,
    /// `http://host:port` of a Discord stand-in.
    pub discord_proxy: Option<String>,
    /// CIDRs exempt from the outgoing SSRF guard.
    pub outgoing_allowed_nets: Option<String>,
    /// CIDRs of reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Option<String>,
    /// Concurrent sends of the delivery engine.
    pub delivery_concurrency: usize,
    /// Days finished deliveries, attempts and events are kept.
    pub retention_days: u32,
    /// Failed attempts in a row after which an outgoing subscription's
    /// deliveries wait (its circuit breaker opens).
    pub outgoing_breaker_threshold: u32,
    /// Hours a subscription may keep failing before it is disabled.
    pub outgoing_disable_after_hours: u32,
    /// Development only: workflows without a secret take unsigned requests
    /// (each such run is marked). Off: they answer 401.
    pub workflows_allow_unsigned: bool,
    /// Comma-separated programs `shell_exec` steps may run (names on `PATH`
    /// or absolute paths); empty turns `shell_exec` off.
    pub workflows_shell_allow: Option<String>,
    /// How long `POST /webhooks/{name}` waits for a run to finish before
    /// answering 202 instead of 200.
    pub workflows_sync_wait_ms: u64,
    /// How long a client may take to send a request's headers, and to
    /// start its next request on a kept-alive connection.
    pub header_timeout_ms: u64,
    /// How long a client may take to send a request's body.
    pub body_timeout_ms: u64,
    /// Client connections held at once; past it new ones get 503.
    pub max_connections: usize,
    /// The Docker engine `docker` hooks watch: `unix:///path` or
    /// `tcp://host:port` (default: Docker's own socket).
    pub docker_host: Option<String>,
    /// What validation parsed, kept so nothing is parsed twice.
    #[serde(skip)]
    parsed: Parsed,
}

/// Values `validate` parsed from their text form.
#[derive(Clone, Default)]
struct Parsed {
    guard: chorus_deliver::SsrfGuard,
    trusted_proxies: Vec<chorus_deliver::Cidr>,
    discord_key: Option<chorus_verify::DiscordKey>,
    shell_allow: Vec<String>,
    docker_host: Option<crate::DockerHost>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "[redacted]");
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_ref().map(|u| u.split('@').next_back().unwrap_or_default()),
            )
            .field("master_key", &redacted(&self.master_key))
            .field("api_token", &redacted(&self.api_token))
            .field("public_url", &self.public_url)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("discord_token", &redacted(&self.discord_token))
            .field("discord_public_key", &self.discord_public_key)
            .field("discord_application_id", &self.discord_application_id)
            .field("discord_manager_role", &self.discord_manager_role)
            .field("discord_guild_id", &self.discord_guild_id)
            .field("discord_gateway", &self.discord_gateway)
            .field("discord_proxy", &self.discord_proxy)
            .field("outgoing_allowed_nets", &self.outgoing_allowed_nets)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("delivery_concurrency", &self.delivery_concurrency)
            .field("retention_days", &self.retention_days)
            .field("outgoing_breaker_threshold", &self.outgoing_breaker_threshold)
            .field("outgoing_disable_after_hours", &self.outgoing_disable_after_hours)
            .field("workflows_allow_unsigned", &self.workflows_allow_unsigned)
            .field("workflows_shell_allow", &self.workflows_shell_allow)
            .field("workflows_sync_wait_ms", &self.workflows_sync_wait_ms)
            .field("docker_host", &self.docker_host)
            .field("header_timeout_ms", &self.header_timeout_ms)
            .field("body_timeout_ms", &self.body_timeout_ms)
            .field("max_connections", &self.max_connections)
            // `parsed` repeats the text fields above in parsed form.
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            master_key: None,
            api_token: None,
            public_url: None,
            max_body_bytes: 5 * 1024 * 1024,
            discord_token: None,
            discord_public_key: None,
            discord_application_id: None,
            discord_manager_role: None,
            discord_guild_id: None,
            discord_gateway: None,
            discord_proxy: None,
            outgoing_allowed_nets: None,
            trusted_proxies: None,
            delivery_concurrency: 32,
            retention_days: 30,
            outgoing_breaker_threshold: 10,
            outgoing_disable_after_hours: 72,
            workflows_allow_unsigned: false,
            workflows_shell_allow: None,
            docker_host: None,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_connections: 10_000,
            workflows_sync_wait_ms: 5_000,
            parsed: Parsed::default(),
        }
    }
}

impl Config {
    /// Read `file` (if given), then apply `CHORUS_*` variables from `env`,
    /// then validate.
    pub fn load(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                toml::from_str(&text)
                    .map_err(|source| ConfigError::Parse { path: path.to_owned(), source })?
            }
            None => Config::default(),
        };
        let var = |k: &str| env(k).filter(|v| !v.is_empty());
        if let Some(v) = var("CHORUS_LISTEN") {
            config.listen =
                v.parse().map_err(|_| invalid("CHORUS_LISTEN", format!("{v:?} is not host:port")))?;
        }
        if let Some(v) = var("CHORUS_DATA_DIR") {
            config.data_dir = v.into();
        }
        if let Some(v) = var("CHORUS_MAX_BODY_BYTES") {
            config.max_body_bytes = v
                .parse()
                .map_err(|_| invalid("CHORUS_MAX_BODY_BYTES", format!("{v:?} is not a byte count")))?;
        }
        for (key, slot) in [
            ("CHORUS_HEADER_TIMEOUT_MS", &mut config.header_timeout_ms),
            ("CHORUS_BODY_TIMEOUT_MS", &mut config.body_timeout_ms),
        ] {
            if let Some(v) = var(key) {
                *slot = v.parse().map_err(|_| invalid(key, format!("{v:?} is not milliseconds")))?;
            }
        }
        if let Some(v) = var("CHORUS_MAX_CONNECTIONS") {
            config.max_connections =
                v.parse().map_err(|_| invalid("CHORUS_MAX_CONNECTIONS", format!("{v:?} is not a number")))?;
        }
        if let Some(v) = var("CHORUS_RETENTION_DAYS") {
            config.retention_days = v
                .parse()
                .map_err(|_| invalid("CHORUS_RETENTION_DAYS", format!("{v:?} is not a number of days")))?;
        }
        if let Some(v) = var("CHORUS_OUTGOING_BREAKER_THRESHOLD") {
            config.outgoing_breaker_threshold = v.parse().map_err(|_| {
                invalid("CHORUS_OUTGOING_BREAKER_THRESHOLD", format!("{v:?} is not a number"))
            })?;
        }
        if let Some(v) = var("CHORUS_OUTGOING_DISABLE_AFTER_HOURS") {
            config.outgoing_disable_after_hours = v.parse().map_err(|_| {
                invalid("CHORUS_OUTGOING_DISABLE_AFTER_HOURS", format!("{v:?} is not a number of hours"))
            })?;
        }
        if let Some(v) = var("CHORUS_DELIVERY_CONCURRENCY") {
            config.delivery_concurrency = v
                .parse()
                .map_err(|_| invalid("CHORUS_DELIVERY_CONCURRENCY", format!("{v:?} is not a number")))?;
        }
        if let Some(v) = var("CHORUS_WORKFLOWS_ALLOW_UNSIGNED") {
            config.workflows_allow_unsigned = match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    return Err(invalid(
                        "CHORUS_WORKFLOWS_ALLOW_UNSIGNED",
                        format!("{v:?} is not true or false"),
                    ));
                }
            };
        }
        if let Some(v) = var("CHORUS_WORKFLOWS_SYNC_WAIT_MS") {
            config.workflows_sync_wait_ms = v.parse().map_err(|_| {
                invalid("CHORUS_WORKFLOWS_SYNC_WAIT_MS", format!("{v:?} is not milliseconds"))
            })?;
        }
        for (key, slot) in [
            ("CHORUS_WORKFLOWS_SHELL_ALLOW", &mut config.workflows_shell_allow),
            ("CHORUS_DOCKER_HOST", &mut config.docker_host),
            ("CHORUS_DATABASE_URL", &mut config.database_url),
            ("CHORUS_MASTER_KEY", &mut config.master_key),
            ("CHORUS_API_TOKEN", &mut config.api_token),
            ("CHORUS_PUBLIC_URL", &mut config.public_url),
            ("CHORUS_DISCORD_TOKEN", &mut config.discord_token),
            ("CHORUS_DISCORD_PUBLIC_KEY", &mut config.discord_public_key),
            ("CHORUS_DISCORD_APPLICATION_ID", &mut config.discord_application_id),
            ("CHORUS_DISCORD_MANAGER_ROLE", &mut config.discord_manager_role),
            ("CHORUS_DISCORD_GUILD_ID", &mut config.discord_guild_id),
            ("CHORUS_DISCORD_GATEWAY", &mut config.discord_gateway),
            ("CHORUS_DISCORD_PROXY", &mut config.discord_proxy),
            ("CHORUS_OUTGOING_ALLOWED_NETS", &mut config.outgoing_allowed_nets),
            ("CHORUS_TRUSTED_PROXIES", &mut config.trusted_proxies),
        ] {
            if let Some(v) = var(key) {
                *slot = Some(v);
            }
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&mut self) -> Result<(), ConfigError> {
        if self.max_body_bytes < 1024 || self.max_body_bytes > 100 * 1024 * 1024 {
            return Err(invalid("max_body_bytes", "must be between 1 KiB and 100 MiB".into()));
        }
        if self.delivery_concurrency == 0 || self.delivery_concurrency > 1024 {
            return Err(invalid("delivery_concurrency", "must be between 1 and 1024".into()));
        }
        if self.outgoing_breaker_threshold == 0 || self.outgoing_breaker_threshold > 10_000 {
            return Err(invalid("outgoing_breaker_threshold", "must be between 1 and 10000".into()));
        }
        if self.outgoing_disable_after_hours > 24 * 365 {
            return Err(invalid("outgoing_disable_after_hours", "must be at most 8760 (a year)".into()));
        }
        if self.retention_days == 0 || self.retention_days > 3650 {
            return Err(invalid("retention_days", "must be between 1 and 3650".into()));
        }
        if let Some(nets) = &self.outgoing_allowed_nets {
            self.parsed.guard = chorus_deliver::SsrfGuard::from_list(nets)
                .map_err(|e| invalid("outgoing_allowed_nets", e))?;
        }
        if let Some(list) = &self.trusted_proxies {
            self.parsed.trusted_proxies = list
                .split(',')
                .filter(|n| !n.trim().is_empty())
                .map(|net| chorus_deliver::Cidr::parse(net).map_err(|e| invalid("trusted_proxies", e)))
                .collect::<Result<_, _>>()?;
        }
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url).map_err(|e| invalid("public_url", e.to_string()))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(invalid("public_url", "must be an http(s) URL".into()));
            }
        }
        if let Some(proxy) = self.discord_proxy.take() {
            // twilight takes `host:port`; accept the URL form too.
            let hostport = proxy.trim_start_matches("http://").trim_end_matches('/').to_owned();
            if hostport.contains('/') || hostport.is_empty() || proxy.starts_with("https://") {
                return Err(invalid("discord_proxy", format!("{proxy:?} must be http://host:port")));
            }
            self.discord_proxy = Some(hostport);
        }
        if let Some(url) = &self.discord_gateway
            && !(url.starts_with("ws://") || url.starts_with("wss://"))
        {
            return Err(invalid("discord_gateway", format!("{url:?} must be a ws:// or wss:// URL")));
        }
        if let Some(key) = &self.discord_public_key {
            self.parsed.discord_key = Some(chorus_verify::DiscordKey::from_hex(key).map_err(|_| {
                invalid("discord_public_key", "must be the 64 hex characters of an Ed25519 key".into())
            })?);
        }
        for (key, value) in [
            ("discord_application_id", &self.discord_application_id),
            ("discord_manager_role", &self.discord_manager_role),
            ("discord_guild_id", &self.discord_guild_id),
        ] {
            if value.as_deref().is_some_and(|v| v.parse::<u64>().map_or(true, |n| n == 0)) {
                return Err(invalid(key, "must be a Discord id (a number)".into()));
            }
        }
        for (key, ms) in
            [("header_timeout_ms", self.header_timeout_ms), ("body_timeout_ms", self.body_timeout_ms)]
        {
            if !(100..=600_000).contains(&ms) {
                return Err(invalid(key, "must be between 100 and 600000 (10 minutes)".into()));
            }
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(invalid("max_connections", "must be between 1 and 1000000".into()));
        }
        if self.workflows_sync_wait_ms > 60_000 {
            return Err(invalid("workflows_sync_wait_ms", "must be at most 60000".into()));
        }
        if let Some(list) = &self.workflows_shell_allow {
            let programs: Vec<String> =
                list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect();
            if let Some(bad) = programs.iter().find(|p| p.contains(char::is_whitespace)) {
                return Err(invalid(
                    "workflows_shell_allow",
                    format!("{bad:?}: list program names or paths, without arguments"),
                ));
            }
            self.parsed.shell_allow = programs;
        }
        if let Some(host) = &self.docker_host {
            self.parsed.docker_host =
                Some(crate::DockerHost::parse(host).map_err(|e| invalid("docker_host", e))?);
        }
        if let Some(token) = &self.api_token
            && token.len() < 16
        {
            return Err(invalid("api_token", "must be at least 16 characters".into()));
        }
        Ok(())
    }

    /// The SSRF guard for outgoing webhooks, as `load` parsed it.
    pub fn ssrf_guard(&self) -> chorus_deliver::SsrfGuard {
        self.parsed.guard.clone()
    }

    /// Apply the `serve` command line's `--listen` and `--data-dir`, which
    /// win over the file and the environment.
    pub fn override_with(
        &mut self,
        listen: Option<&str>,
        data_dir: Option<PathBuf>,
    ) -> Result<(), ConfigError> {
        if let Some(l) = listen {
            self.listen = l.parse().map_err(|_| invalid("--listen", format!("{l:?} is not host:port")))?;
        }
        if let Some(d) = data_dir {
            self.data_dir = d;
        }
        Ok(())
    }

    /// The Docker engine `docker` hooks watch, as `load` parsed it.
    pub fn docker(&self) -> crate::DockerHost {
        self.parsed.docker_host.clone().unwrap_or_else(crate::DockerHost::default_socket)
    }

    /// The programs `shell_exec` may run, as `load` parsed them.
    pub fn shell_allow(&self) -> Vec<String> {
        self.parsed.shell_allow.clone()
    }

    /// The interactions endpoint's key, as `load` parsed it.
    pub fn discord_key(&self) -> Option<chorus_verify::DiscordKey> {
        self.parsed.discord_key.clone()
    }

    /// The reverse proxies whose `X-Forwarded-For` is believed, as `load`
    /// parsed them.
    pub fn trusted_proxies(&self) -> Vec<chorus_deliver::Cidr> {
        self.parsed.trusted_proxies.clone()
    }

    /// The base of hook URLs.
    pub fn public_base(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }
}

fn invalid(key: &'static str, message: String) -> ConfigError {
    ConfigError::Invalid { key, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("chorus.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nmax_body_bytes = 2048\n").unwrap();
        let env = |k: &str| (k == "CHORUS_LISTEN").then(|| "127.0.0.1:9100".to_owned());
        let c = Config::load(Some(&file), env).unwrap();
        assert_eq!(c.listen.port(), 9100);
        assert_eq!(c.max_body_bytes, 2048);

        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let err = Config::load(Some(&file), |_| None).unwrap_err();
        assert!(format!("{:#}", anyhow_chain(&err)).contains("lisen"), "{err:?}");

        let err = Config::load(None, |k| (k == "CHORUS_MAX_BODY_BYTES").then(|| "lots".into())).unwrap_err();
        assert!(err.to_string().contains("CHORUS_MAX_BODY_BYTES"));
        let c = Config::load(None, |k| (k == "CHORUS_DISCORD_PROXY").then(|| "http://127.0.0.1:9999".into()))
            .unwrap();
        assert_eq!(c.discord_proxy.as_deref(), Some("127.0.0.1:9999"));

        let proxies = |v: &'static str| move |k: &str| (k == "CHORUS_TRUSTED_PROXIES").then(|| v.to_owned());
        let err = Config::load(None, proxies("10.0.0.0/8, not-a-net")).unwrap_err();
        assert!(err.to_string().contains("trusted_proxies"), "{err}");
        let c = Config::load(None, proxies("10.0.0.0/8, 192.168.1.1")).unwrap();
        let trusted = c.trusted_proxies();
        assert_eq!(trusted.len(), 2);
        assert!(trusted[1].contains("192.168.1.1".parse().unwrap()));
    }

    #[test]
    fn discord_settings_and_command_line_are_checked() {
        let one =
            |key: &'static str, value: &'static str| move |k: &str| (k == key).then(|| value.to_owned());
        for (key, value, named) in [
            ("CHORUS_DISCORD_PUBLIC_KEY", "not-hex", "discord_public_key"),
            ("CHORUS_DISCORD_GUILD_ID", "my-server", "discord_guild_id"),
            ("CHORUS_DISCORD_MANAGER_ROLE", "0", "discord_manager_role"),
            ("CHORUS_DISCORD_APPLICATION_ID", "-1", "discord_application_id"),
            ("CHORUS_DISCORD_GATEWAY", "http://127.0.0.1:1", "discord_gateway"),
            ("CHORUS_DOCKER_HOST", "ssh://box", "docker_host"),
            ("CHORUS_HEADER_TIMEOUT_MS", "5", "header_timeout_ms"),
            ("CHORUS_BODY_TIMEOUT_MS", "soon", "CHORUS_BODY_TIMEOUT_MS"),
            ("CHORUS_MAX_CONNECTIONS", "0", "max_connections"),
            ("CHORUS_OUTGOING_DISABLE_AFTER_HOURS", "three days", "CHORUS_OUTGOING_DISABLE_AFTER_HOURS"),
            ("CHORUS_OUTGOING_DISABLE_AFTER_HOURS", "9000", "outgoing_disable_after_hours"),
        ] {
            let err = Config::load(None, one(key, value)).unwrap_err();
            assert!(err.to_string().contains(named), "{key}={value}: {err}");
        }
        let key = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";
        let c = Config::load(None, one("CHORUS_DISCORD_PUBLIC_KEY", key)).unwrap();
        assert!(c.discord_key().is_some());
        assert_eq!(Config::load(None, |_| None).unwrap().docker(), crate::DockerHost::default_socket());
        assert_eq!(Config::load(None, |_| None).unwrap().outgoing_disable_after_hours, 72);
        let c = Config::load(None, one("CHORUS_OUTGOING_DISABLE_AFTER_HOURS", "0")).unwrap();
        assert_eq!(c.outgoing_disable_after_hours, 0, "0: disabled at the threshold");
        let c = Config::load(None, one("CHORUS_DOCKER_HOST", "tcp://10.0.0.5:2375")).unwrap();
        assert_eq!(c.docker(), crate::DockerHost::Tcp("10.0.0.5:2375".into()));

        let mut c = Config::load(None, |_| None).unwrap();
        let err = c.override_with(Some("nowhere"), None).unwrap_err();
        assert!(err.to_string().contains("--listen"), "{err}");
        c.override_with(Some("127.0.0.1:0"), Some("/tmp/elsewhere".into())).unwrap();
        assert_eq!((c.listen.port(), c.data_dir.as_path()), (0, Path::new("/tmp/elsewhere")));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let env = |k: &str| match k {
            "CHORUS_API_TOKEN" => Some("token-token-token-1234".to_owned()),
            "CHORUS_DISCORD_TOKEN" => Some("bot-secret".to_owned()),
            "CHORUS_MASTER_KEY" => Some("a2V5a2V5a2V5".to_owned()),
            _ => None,
        };
        let shown = format!("{:?}", Config::load(None, env).unwrap());
        for secret in ["token-token-token-1234", "bot-secret", "a2V5a2V5a2V5"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    fn anyhow_chain(e: &dyn std::error::Error) -> String {
        let mut s = e.to_string();
        let mut cur = e.source();
        while let Some(c) = cur {
            s.push_str(": ");
            s.push_str(&c.to_string());
            cur = c.source();
        }
        s
    }
}
