//! Local mode's own output: by default only warnings and errors, human-readable, under the
//! banner; `-v` adds what the stack does (info), `-vv` debug, `-vvv` everything; `RUST_LOG`
//! overrides the level; `--log-format json` prints the JSON lines the Lambda runtime prints.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One compact line per event, for people.
    #[default]
    Text,
    /// One JSON object per line, as `lambda_runtime`'s subscriber prints with `LogFormat: JSON`.
    Json,
}

/// Noisy dependencies stay at warnings until `-vvv`.
const QUIET_DEPENDENCIES: &str = "aws_config=warn,aws_smithy_runtime=warn,hyper=warn,dynoxide=error";

/// The filter for `verbose` (the number of `-v`), unless `rust_log` (the `RUST_LOG` value) says
/// otherwise.
pub fn directives(verbose: u8, rust_log: Option<&str>) -> String {
    if let Some(explicit) = rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        return explicit.to_owned();
    }
    match verbose {
        0 => format!("warn,{QUIET_DEPENDENCIES}"),
        1 => format!("info,{QUIET_DEPENDENCIES}"),
        2 => format!("debug,{QUIET_DEPENDENCIES}"),
        _ => "trace".to_owned(),
    }
}

/// Why the subscriber could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("invalid log filter {directives:?}: {source}")]
    Filter {
        directives: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("a log subscriber is already installed: {0}")]
    Installed(String),
}

/// Installs the process-wide subscriber (stdout).
pub fn init(format: LogFormat, verbose: u8) -> Result<(), LoggingError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let directives = directives(verbose, rust_log.as_deref());
    let filter = EnvFilter::try_new(&directives).map_err(|source| LoggingError::Filter {
        directives: directives.clone(),
        source,
    })?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let installed = match format {
        LogFormat::Text => builder.compact().try_init(),
        LogFormat::Json => builder.json().without_time().try_init(),
    };
    installed.map_err(|e| LoggingError::Installed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_by_default_louder_with_each_v_and_rust_log_wins() {
        assert!(directives(0, None).starts_with("warn,"));
        assert!(directives(1, None).starts_with("info,"));
        assert!(directives(2, None).starts_with("debug,"));
        assert_eq!(directives(3, None), "trace");
        assert_eq!(directives(0, Some("statecast=debug")), "statecast=debug");
        assert!(
            directives(1, Some("  ")).starts_with("info,"),
            "an empty RUST_LOG is unset"
        );
        for verbose in 0..4 {
            assert!(EnvFilter::try_new(directives(verbose, None)).is_ok());
        }
    }
}
