//! `conflictkit::config`: layered loading from real YAML, JSON and TOML files,
//! in-memory layers and `--set` overrides, and the errors.

use std::error::Error as _;
use std::path::PathBuf;

use conflictkit::config::{ConfigError, Format, Layer, Loader, OverrideProblem, load, load_value};
use conflictkit::merge::{JsonType, MergeError, MergeOptions};
use serde::Deserialize;
use serde_json::{Value, json};
use tempfile::TempDir;

struct Files(TempDir);

impl Files {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

#[derive(Debug, Deserialize, PartialEq)]
struct Config {
    database: Database,
    events: Events,
    plugins: Vec<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Database {
    url: String,
    echo: bool,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Events {
    http: Http,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Http {
    url: String,
    port: u16,
}

#[test]
fn files_in_all_three_formats_defaults_and_overrides_merge_in_order() {
    let files = Files::new();
    let yaml = files.write(
        "base.yaml",
        "database:\n  url: sqlite://base.db\n  echo: false\nplugins: [yaml]\nevents:\n  http:\n    url: http://127.0.0.1:1\n",
    );
    let json = files.write(
        "site.json",
        r#"{"database": {"url": "postgres://site"}, "plugins": ["json"]}"#,
    );
    let toml = files.write(
        "local.toml",
        "plugins = ['toml']\n[events.http]\nport = 9000\n",
    );
    let config: Config = load([
        Layer::value(json!({"events": {"http": {"port": 80}}, "plugins": ["defaults"]}))
            .named("defaults"),
        Layer::file(&yaml),
        Layer::file(&json),
        Layer::file(&toml),
        Layer::parse_set("events.http.url=http://127.0.0.1:8080/?a=b").unwrap(),
        Layer::set("database.echo", "true"),
    ])
    .unwrap();
    assert_eq!(
        config,
        Config {
            database: Database {
                url: "postgres://site".into(),
                echo: true
            },
            events: Events {
                http: Http {
                    url: "http://127.0.0.1:8080/?a=b".into(),
                    port: 9000
                }
            },
            // The original's rules: lists are appended to, layer after layer.
            plugins: vec![
                "defaults".into(),
                "yaml".into(),
                "json".into(),
                "toml".into()
            ],
        }
    );
}

#[test]
fn yml_and_upper_case_extensions_are_recognised() {
    let files = Files::new();
    let yml = files.write("a.yml", "a: 1\n");
    let upper = files.write("b.JSON", r#"{"b": 2}"#);
    assert_eq!(
        load_value([Layer::file(yml), Layer::file(upper)]).unwrap(),
        json!({"a": 1, "b": 2})
    );
}

#[test]
fn empty_files_add_nothing() {
    let files = Files::new();
    let empty_yaml = files.write("empty.yaml", "");
    let comment_only = files.write("comments.yaml", "# nothing here\n");
    let empty_toml = files.write("empty.toml", "");
    let config = load_value([
        Layer::set("kept", "1"),
        Layer::file(empty_yaml),
        Layer::file(comment_only),
        Layer::file(empty_toml),
    ])
    .unwrap();
    assert_eq!(config, json!({"kept": 1}));
}

#[test]
fn no_layers_is_an_empty_object() {
    assert_eq!(load_value([]).unwrap(), json!({}));
}

#[test]
fn merge_patch_loader_replaces_lists_and_deletes_nulls() {
    let files = Files::new();
    let base = files.write("base.yaml", "plugins: [a, b]\ndebug: true\nkeep: 1\n");
    let site = files.write("site.json", r#"{"plugins": ["c"], "debug": null}"#);
    let config = Loader::new()
        .merge_options(MergeOptions::MERGE_PATCH)
        .load_value([Layer::file(base), Layer::file(site)])
        .unwrap();
    assert_eq!(config, json!({"plugins": ["c"], "keep": 1}));
}

// ---- `--set` overrides ---------------------------------------------------------------

#[test]
fn set_values_are_yaml_scalars() {
    let cases = [
        ("8080", json!(8080)),
        ("-3", json!(-3)),
        ("18446744073709551615", json!(u64::MAX)),
        ("1.5", json!(1.5)),
        ("true", json!(true)),
        ("false", json!(false)),
        ("null", json!(null)),
        ("~", json!(null)),
        ("", json!(null)),
        ("hello world", json!("hello world")),
        ("'8080'", json!("8080")),
        ("\"true\"", json!("true")),
        ("http://127.0.0.1:8080", json!("http://127.0.0.1:8080")),
        // Not scalars, or not representable in JSON: kept as the text.
        ("a: b", json!("a: b")),
        ("[1, 2]", json!("[1, 2]")),
        ("{x: 1}", json!("{x: 1}")),
        (".inf", json!(".inf")),
        (".nan", json!(".nan")),
        ("'unterminated", json!("'unterminated")),
    ];
    for (text, expected) in cases {
        let layer = Layer::parse_set(&format!("k={text}")).unwrap();
        assert_eq!(
            load_value([layer]).unwrap(),
            json!({"k": expected}),
            "value {text:?}"
        );
    }
}

#[test]
fn dotted_keys_create_nested_objects_and_merge_with_siblings() {
    let config = load_value([
        Layer::value(json!({"events": {"http": {"port": 80}}})),
        Layer::parse_set(" events.http.url = x").unwrap(),
    ])
    .unwrap();
    // The value is a YAML plain scalar, so surrounding white space goes too.
    assert_eq!(
        config,
        json!({"events": {"http": {"port": 80, "url": "x"}}})
    );
}

#[test]
fn parse_set_rejects_malformed_arguments() {
    let cases = [
        ("debug", OverrideProblem::MissingEquals),
        ("", OverrideProblem::MissingEquals),
        ("=1", OverrideProblem::EmptyKey),
        ("  =1", OverrideProblem::EmptyKey),
        ("a..b=1", OverrideProblem::EmptyKeyPart),
        (".a=1", OverrideProblem::EmptyKeyPart),
        ("a.=1", OverrideProblem::EmptyKeyPart),
    ];
    for (input, expected) in cases {
        match Layer::parse_set(input) {
            Err(ConfigError::InvalidOverride {
                input: reported,
                problem,
            }) => {
                assert_eq!(reported, input);
                assert_eq!(problem, expected, "{input:?}");
            }
            other => panic!("{input:?} gave {other:?}"),
        }
    }
    let err = Layer::parse_set("a..b=1").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid override `a..b=1`: the key has an empty part; separate its parts with single dots, e.g. events.http.url"
    );
    assert!(
        err.source()
            .is_some_and(|source| source.is::<OverrideProblem>())
    );
}

#[test]
fn set_with_a_bad_key_fails_at_load() {
    let err = load_value([Layer::set("", "1")]).unwrap_err();
    assert!(matches!(
        err,
        ConfigError::InvalidOverride {
            problem: OverrideProblem::EmptyKey,
            ..
        }
    ));
    assert!(
        err.to_string()
            .starts_with("invalid override `=1`: the key is empty")
    );
}

// ---- errors ----------------------------------------------------------------------------

#[test]
fn unknown_extension_is_a_typed_error_naming_the_file() {
    let files = Files::new();
    let path = files.write("config.ini", "a = 1\n");
    let err = load_value([Layer::file(&path)]).unwrap_err();
    let ConfigError::UnknownFormat { path: reported } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(reported, &path);
    assert!(err.to_string().contains(&format!("`{}`", path.display())));
    assert!(err.to_string().contains(".yaml, .yml, .json or .toml"));
    // Without any extension too.
    let bare = files.write("config", "a: 1\n");
    assert!(matches!(
        load_value([Layer::file(bare)]),
        Err(ConfigError::UnknownFormat { .. })
    ));
}

#[test]
fn missing_file_names_the_file_and_keeps_the_io_error() {
    let files = Files::new();
    let path = files.0.path().join("absent.yaml");
    let err = load_value([Layer::file(&path)]).unwrap_err();
    let ConfigError::Read {
        path: reported,
        source,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(reported, &path);
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read config file `{}`: ", path.display()))
    );
    assert!(
        err.source()
            .is_some_and(|source| source.is::<std::io::Error>())
    );
}

#[test]
fn parse_errors_name_the_file_format_and_line() {
    let files = Files::new();
    let cases = [
        ("bad.yaml", "a: 1\nb: [unclosed\n", "YAML"),
        ("bad.json", "{\n  \"a\": 1,\n}", "JSON"),
        ("bad.toml", "a = 1\nb = \n", "TOML"),
    ];
    for (name, text, format) in cases {
        let path = files.write(name, text);
        let err = load_value([Layer::file(&path)]).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "cannot parse file `{}` as {format}: ",
                path.display()
            )),
            "{message}"
        );
        assert!(message.contains("line"), "{message}");
        assert!(err.source().is_some(), "{name}");
    }
}

#[test]
fn parse_errors_of_in_memory_text_name_the_layer_position() {
    let err = load_value([Layer::set("a", "1"), Layer::text(Format::Json, "{")]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot parse JSON text (layer 2) as JSON: "),
        "{err}"
    );
    let err = load_value([Layer::text(Format::Toml, "=").named("built-in defaults")]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot parse built-in defaults as TOML: "),
        "{err}"
    );
}

#[test]
fn merge_errors_name_the_layer_and_the_key_path() {
    let files = Files::new();
    let base = files.write(
        "base.yaml",
        "events:\n  http:\n    url: http://127.0.0.1:1\n",
    );
    let bad = files.write("bad.toml", "events = { http = 'off' }\n");
    let err = load_value([Layer::file(&base), Layer::file(&bad)]).unwrap_err();
    let ConfigError::Merge { layer, source } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(layer, &format!("file `{}`", bad.display()));
    assert_eq!(source.path().to_string(), "events.http");
    assert_eq!(
        (source.existing(), source.incoming()),
        (JsonType::Object, JsonType::String)
    );
    assert!(err.to_string().starts_with(&format!(
        "cannot merge file `{}` over the layers before it: cannot merge a string into an object at `events.http`",
        bad.display()
    )));
    assert!(err.source().is_some_and(|source| source.is::<MergeError>()));
}

#[test]
fn a_top_level_list_cannot_be_merged_into_the_configuration() {
    let err = load_value([Layer::text(Format::Yaml, "- a\n- b\n")]).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot merge an array into an object at the top level"),
        "{err}"
    );
}

#[test]
fn deserialize_errors_name_the_key_path_and_the_layer_that_set_it() {
    let files = Files::new();
    let base = files.write(
        "base.yaml",
        "database: {url: x, echo: false}\nplugins: []\nevents:\n  http:\n    url: u\n    port: 80\n",
    );
    let site = files.write("site.toml", "[events.http]\nport = 70000\n");
    let err = load::<Config>([Layer::file(&base), Layer::file(&site)]).unwrap_err();
    let ConfigError::Deserialize {
        path,
        origin,
        source,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(path.to_string(), "events.http.port");
    assert_eq!(
        origin.as_deref(),
        Some(format!("file `{}`", site.display()).as_str())
    );
    assert!(source.to_string().contains("70000"), "{source}");
    assert!(err.to_string().starts_with(&format!(
        "invalid configuration at `events.http.port` (set by file `{}`): ",
        site.display()
    )));
    assert!(
        err.source()
            .is_some_and(|source| source.is::<serde_json::Error>())
    );
}

#[test]
fn deserialize_errors_show_array_positions_and_missing_fields() {
    #[derive(Debug, Deserialize)]
    struct Servers {
        #[allow(dead_code)]
        servers: Vec<Http>,
    }
    let err = load::<Servers>([Layer::text(
        Format::Yaml,
        "servers:\n  - {url: a, port: 1}\n  - {url: b, port: nope}\n",
    )
    .named("servers.yaml")])
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid configuration at `servers[1].port` (set by servers.yaml): "),
        "{err}"
    );

    let err = load::<Config>([Layer::set("database.url", "x")]).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("at `database` (set by override `database.url=x`)"),
        "{message}"
    );
    assert!(message.contains("missing field `echo`"), "{message}");
}

#[test]
fn deserialize_error_without_any_layer_setting_the_key() {
    let err = load::<Config>([]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration at the top level: missing field `database`"
    );
}

// ---- format details ------------------------------------------------------------------------

#[test]
fn yaml_merge_keys_tags_and_non_string_keys() {
    let text = "base: &base {a: 1, b: 2}\nderived:\n  <<: *base\n  b: 3\nports:\n  8080: http\n  true: yes\nmode: !Fast 3\n";
    assert_eq!(
        load_value([Layer::text(Format::Yaml, text)]).unwrap(),
        json!({
            "base": {"a": 1, "b": 2},
            "derived": {"a": 1, "b": 3},
            "ports": {"8080": "http", "true": "yes"},
            "mode": {"Fast": 3},
        })
    );
}

#[test]
fn yaml_infinity_is_an_error_naming_the_key() {
    let err = load_value([Layer::text(Format::Yaml, "limits:\n  - .inf\n")]).unwrap_err();
    assert!(
        err.to_string()
            .contains("the number at `limits[0]` is inf, which JSON cannot hold"),
        "{err}"
    );
}

#[test]
fn toml_datetimes_become_strings_and_nan_is_an_error() {
    let config = load_value([Layer::text(
        Format::Toml,
        "at = 1979-05-27T07:32:00Z\nday = 1979-05-27\n",
    )])
    .unwrap();
    assert_eq!(
        config,
        json!({"at": "1979-05-27T07:32:00Z", "day": "1979-05-27"})
    );
    let err = load_value([Layer::text(Format::Toml, "[limits]\nmax = nan\n")]).unwrap_err();
    assert!(
        err.to_string()
            .contains("the number at `limits.max` is NaN"),
        "{err}"
    );
}

#[test]
fn format_from_path_and_display() {
    assert_eq!(Format::from_path("a.yaml".as_ref()), Some(Format::Yaml));
    assert_eq!(Format::from_path("a.tar.toml".as_ref()), Some(Format::Toml));
    assert_eq!(Format::from_path(".json".as_ref()), None);
    assert_eq!(Format::Yaml.to_string(), "YAML");
    let value: Value = load_value([
        Layer::value(json!({"x": [1]})),
        Layer::value(json!({"x": [2]})),
    ])
    .unwrap();
    assert_eq!(value, json!({"x": [1, 2]}));
}

#[test]
fn errors_are_send_sync_and_static() {
    fn check<T: std::error::Error + Send + Sync + 'static>() {}
    check::<ConfigError>();
    check::<MergeError>();
}
