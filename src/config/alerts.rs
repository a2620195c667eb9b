//! The alerts file of `writ serve --alerts FILE` (YAML, or JSON, which YAML reads too): which
//! rules run with which thresholds, and the webhook. Read into the engine's [`AlertConfig`] and
//! the API's [`WebhookSettings`]; `--alert-webhook URL` sets (or replaces) the webhook's URL.
//!
//! ```yaml
//! agent_type: agent                       # whose calls are watched (the default)
//! denials: { threshold: 20, window: 1m }  # more than 20 denied calls of an agent within a minute
//! outside_task: true                      # or { task_type: task, relation: tool, tool_type: tool }
//! first_tool_call: true
//! max_chain: 3                            # a chain of more principals alerts
//! keep: 10000                             # alerts kept in memory
//! queue: 65536                            # decisions waiting for evaluation
//! webhook: { url: "https://hooks.example.com/writ", queue: 1024, attempts: 5,
//!            backoff: 500ms, max_backoff: 30s, timeout: 5s }
//! ```
//! Invariant: what it returns is valid (positive thresholds and bounds, an `http(s)` URL).
//! Must not import `store`, `index` or `eval`.

use super::{parse_duration, ConfigError};
use crate::api::WebhookSettings;
use crate::engine::{AlertConfig, DenialsRule, TaskRule};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsFile {
    agent_type: Option<String>,
    denials: Option<DenialsEntry>,
    outside_task: Option<OutsideTaskEntry>,
    #[serde(default)]
    first_tool_call: bool,
    max_chain: Option<usize>,
    keep: Option<usize>,
    queue: Option<usize>,
    webhook: Option<WebhookEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DenialsEntry {
    threshold: u32,
    window: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OutsideTaskEntry {
    On(bool),
    Rule(TaskEntry),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskEntry {
    task_type: Option<String>,
    relation: Option<String>,
    tool_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookEntry {
    url: Option<String>,
    queue: Option<usize>,
    attempts: Option<u32>,
    backoff: Option<String>,
    max_backoff: Option<String>,
    timeout: Option<String>,
}

/// Reads `--alerts FILE`, with `--alert-webhook URL` over the file's webhook URL.
pub(super) fn read_alerts(
    path: &Path,
    webhook_url: Option<&str>,
) -> Result<(AlertConfig, Option<WebhookSettings>), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Alerts(format!("cannot read `--alerts` file `{}`: {e}", path.display())))?;
    parse_alerts(&text, webhook_url)
        .map_err(|e| ConfigError::Alerts(format!("`--alerts` file `{}`: {e}", path.display())))
}

/// Reads an alerts file's text.
fn parse_alerts(text: &str, webhook_url: Option<&str>) -> Result<(AlertConfig, Option<WebhookSettings>), String> {
    let file: AlertsFile = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    let defaults = AlertConfig::default();
    let denials = match file.denials {
        Some(DenialsEntry { threshold, window }) => {
            let window = parse_duration("alerts", &window).map_err(|_| bad_duration("denials.window", &window))?;
            if window.is_zero() {
                return Err("`denials.window` must be greater than 0".into());
            }
            Some(DenialsRule { threshold, window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX) })
        }
        None => None,
    };
    let outside_task = match file.outside_task {
        None | Some(OutsideTaskEntry::On(false)) => None,
        Some(OutsideTaskEntry::On(true)) => Some(TaskRule::default()),
        Some(OutsideTaskEntry::Rule(entry)) => {
            let defaults = TaskRule::default();
            Some(TaskRule {
                task_type: entry.task_type.unwrap_or(defaults.task_type),
                relation: entry.relation.unwrap_or(defaults.relation),
                tool_type: entry.tool_type.unwrap_or(defaults.tool_type),
            })
        }
    };
    for (name, value) in [("max_chain", file.max_chain), ("keep", file.keep), ("queue", file.queue)] {
        if value == Some(0) {
            return Err(format!("`{name}` must be greater than 0"));
        }
    }
    let config = AlertConfig {
        agent_type: file.agent_type.filter(|name| !name.is_empty()).unwrap_or(defaults.agent_type),
        denials,
        outside_task,
        first_tool_call: file.first_tool_call,
        max_chain: file.max_chain,
        keep: file.keep.unwrap_or(defaults.keep),
        queue: file.queue.unwrap_or(defaults.queue),
    };
    let webhook = webhook_settings(file.webhook, webhook_url)?;
    Ok((config, webhook))
}

/// The webhook of the file's entry and the flag (the flag's URL wins); `None` when neither names a URL.
fn webhook_settings(entry: Option<WebhookEntry>, flag: Option<&str>) -> Result<Option<WebhookSettings>, String> {
    let url = flag.or(entry.as_ref().and_then(|entry| entry.url.as_deref()));
    let Some(url) = url.filter(|url| !url.is_empty()) else {
        return match entry {
            Some(_) => Err("`webhook` needs a `url` (or `--alert-webhook URL`)".into()),
            None => Ok(None),
        };
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("webhook URL `{url}` is not an `http://` or `https://` URL"));
    }
    let mut settings = WebhookSettings::new(url);
    let Some(entry) = entry else { return Ok(Some(settings)) };
    let duration = |name: &str, value: Option<String>, default| match value {
        Some(text) => parse_duration("alerts", &text).map_err(|_| bad_duration(name, &text)),
        None => Ok(default),
    };
    settings.first_backoff = duration("webhook.backoff", entry.backoff, settings.first_backoff)?;
    settings.max_backoff = duration("webhook.max_backoff", entry.max_backoff, settings.max_backoff)?;
    settings.timeout = duration("webhook.timeout", entry.timeout, settings.timeout)?;
    settings.queue = entry.queue.unwrap_or(settings.queue);
    settings.attempts = entry.attempts.unwrap_or(settings.attempts);
    if settings.queue == 0 || settings.attempts == 0 || settings.timeout.is_zero() {
        return Err("`webhook.queue`, `webhook.attempts` and `webhook.timeout` must be greater than 0".into());
    }
    Ok(Some(settings))
}

fn bad_duration(name: &str, value: &str) -> String {
    format!("`{name}` value `{value}` is not a duration like `30s`, `15m`, `24h` or `7d`")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_rule_and_the_webhook_read_from_yaml() {
        let text = "denials: { threshold: 20, window: 1m }\noutside_task: true\nfirst_tool_call: true\nmax_chain: 3\n\
                    webhook: { url: 'http://127.0.0.1:9/hook', attempts: 3, backoff: 100ms }\n";
        let (config, webhook) = parse_alerts(text, None).unwrap();
        assert_eq!(config.denials, Some(DenialsRule { threshold: 20, window_ms: 60_000 }));
        assert_eq!(config.outside_task, Some(TaskRule::default()));
        assert!(config.first_tool_call);
        assert_eq!((config.max_chain, config.agent_type.as_str()), (Some(3), "agent"));
        let webhook = webhook.unwrap();
        assert_eq!((webhook.url.as_str(), webhook.attempts), ("http://127.0.0.1:9/hook", 3));
        assert_eq!((webhook.first_backoff, webhook.max_backoff), (Duration::from_millis(100), Duration::from_secs(30)));
    }

    #[test]
    fn every_field_of_a_file_is_read_as_written() {
        // The example of the module's documentation, with every field away from its default.
        let text = "agent_type: robot\ndenials: { threshold: 7, window: 90s }\n\
                    outside_task: { task_type: job, relation: allows, tool_type: action }\n\
                    first_tool_call: true\nmax_chain: 4\nkeep: 500\nqueue: 64\n\
                    webhook: { url: 'https://hooks.example.com/writ', queue: 16, attempts: 2,\n\
                               backoff: 250ms, max_backoff: 10s, timeout: 3s }\n";
        let parsed = parse_alerts(text, None).unwrap();
        let config = AlertConfig {
            agent_type: "robot".into(),
            denials: Some(DenialsRule { threshold: 7, window_ms: 90_000 }),
            outside_task: Some(TaskRule {
                task_type: "job".into(),
                relation: "allows".into(),
                tool_type: "action".into(),
            }),
            first_tool_call: true,
            max_chain: Some(4),
            keep: 500,
            queue: 64,
        };
        let webhook = WebhookSettings {
            url: "https://hooks.example.com/writ".into(),
            queue: 16,
            attempts: 2,
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            timeout: Duration::from_secs(3),
        };
        assert_eq!(parsed, (config, Some(webhook)));
        // Nothing set is every rule off, the default bounds and no webhook; a partial task rule
        // keeps the default names it does not give.
        assert_eq!(parse_alerts("{}", None).unwrap(), (AlertConfig::default(), None));
        let (config, _) = parse_alerts("outside_task: { relation: allows }", None).unwrap();
        assert_eq!(config.outside_task, Some(TaskRule { relation: "allows".into(), ..TaskRule::default() }));
        assert_eq!(parse_alerts("outside_task: false", None).unwrap().0.outside_task, None);
    }

    #[test]
    fn the_flag_sets_the_webhook_and_json_reads_too() {
        let (config, webhook) = parse_alerts(r#"{"first_tool_call": true}"#, Some("https://h.example/x")).unwrap();
        assert!(config.first_tool_call && config.denials.is_none() && config.outside_task.is_none());
        assert_eq!(webhook.unwrap().url, "https://h.example/x");
        assert_eq!(parse_alerts("{}", None).unwrap().1, None);
    }

    #[test]
    fn bad_files_name_the_bad_part() {
        for (text, part) in [
            ("denials: { threshold: 2, window: soon }", "denials.window"),
            ("max_chain: 0", "max_chain"),
            ("first_tool_calls: true", "first_tool_calls"),
            ("webhook: { attempts: 2 }", "url"),
            ("webhook: { url: 'ftp://x' }", "ftp://x"),
        ] {
            let error = parse_alerts(text, None).unwrap_err();
            assert!(error.contains(part), "{text}: {error}");
        }
    }
}
