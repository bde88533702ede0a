//! The agent's major version and the command line each one takes.

use std::ffi::OsString;
use std::path::PathBuf;

/// The agent generations this wrapper drives; they differ in flag syntax and in
/// how they take the authtoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Major {
    /// ngrok 2: single-dash `-flag=value` flags, token only on the command line.
    V2,
    /// ngrok 3 and later: `--flag value`, token from `NGROK_AUTHTOKEN`.
    V3,
}

/// Parses the output of `ngrok version` (`ngrok version 2.3.41`,
/// `ngrok version 3.18.4`) into the full version string and its major number.
pub(crate) fn parse_version(output: &str) -> Option<(String, u32)> {
    let mut words = output.split_whitespace();
    words.find(|w| w.eq_ignore_ascii_case("version"))?;
    let version = words.next()?.trim_start_matches(['v', 'V']);
    let major = version.split('.').next()?.parse().ok()?;
    Some((version.to_owned(), major))
}

/// The settings that end up on the agent's command line.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flags<'a> {
    pub(crate) port: u16,
    pub(crate) authtoken: Option<&'a str>,
    pub(crate) region: Option<&'a str>,
    pub(crate) domain: Option<&'a str>,
    pub(crate) config_files: &'a [PathBuf],
}

/// The arguments for `ngrok http`. The log flags are always forced, because a
/// user's configuration file may set another format, destination or level.
/// For v3 the token is not among them: it goes in the child's environment.
pub(crate) fn http_args(major: Major, flags: &Flags<'_>) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["http".into()];
    match major {
        Major::V3 => {
            args.push(flags.port.to_string().into());
            for arg in [
                "--log",
                "stdout",
                "--log-format",
                "json",
                "--log-level",
                "info",
            ] {
                args.push(arg.into());
            }
            if let Some(region) = flags.region {
                args.extend(["--region".into(), region.into()]);
            }
            if let Some(domain) = flags.domain {
                args.extend(["--domain".into(), domain.into()]);
            }
            for file in flags.config_files {
                args.extend(["--config".into(), file.into()]);
            }
        }
        Major::V2 => {
            for arg in ["-log=stdout", "-log-format=json", "-log-level=info"] {
                args.push(arg.into());
            }
            if let Some(token) = flags.authtoken {
                args.push(format!("-authtoken={token}").into());
            }
            if let Some(region) = flags.region {
                args.push(format!("-region={region}").into());
            }
            if let Some(domain) = flags.domain {
                args.push(format!("-hostname={domain}").into());
            }
            for file in flags.config_files {
                let mut arg = OsString::from("-config=");
                arg.push(file);
                args.push(arg);
            }
            // ngrok 2 stops reading flags at the first positional argument.
            args.push(flags.port.to_string().into());
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v2_and_v3_version_output() {
        assert_eq!(
            parse_version("ngrok version 2.3.41\n"),
            Some(("2.3.41".into(), 2))
        );
        assert_eq!(
            parse_version("ngrok version 3.18.4"),
            Some(("3.18.4".into(), 3))
        );
        assert_eq!(parse_version("ngrok version v1.7"), Some(("1.7".into(), 1)));
        assert_eq!(parse_version("command not found"), None);
        assert_eq!(parse_version("ngrok version"), None);
    }

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn v3_keeps_the_token_off_argv() {
        let config = [PathBuf::from("/etc/ngrok.yml")];
        let flags = Flags {
            port: 8080,
            authtoken: Some("tok"),
            region: Some("eu"),
            domain: Some("x.ngrok.app"),
            config_files: &config,
        };
        let args = strings(http_args(Major::V3, &flags));
        assert_eq!(
            args,
            [
                "http",
                "8080",
                "--log",
                "stdout",
                "--log-format",
                "json",
                "--log-level",
                "info",
                "--region",
                "eu",
                "--domain",
                "x.ngrok.app",
                "--config",
                "/etc/ngrok.yml"
            ]
        );
    }

    #[test]
    fn v2_puts_flags_before_the_port() {
        let flags = Flags {
            port: 8080,
            authtoken: Some("tok"),
            ..Flags::default()
        };
        let args = strings(http_args(Major::V2, &flags));
        assert_eq!(
            args,
            [
                "http",
                "-log=stdout",
                "-log-format=json",
                "-log-level=info",
                "-authtoken=tok",
                "8080"
            ]
        );
    }
}
