//! `template.yaml` against the code: the checks cfn-lint cannot make. The template mirrors the
//! workspace (one function per crate under `functions/`), sets every variable the code reads,
//! grants only the calls the code makes, declares the tables of `TABLE_SPECS` and maps the streams
//! with the settings local mode emulates: the actors stream to the fan-out (`EsmConfig::default()`),
//! the workflows stream to the workflow function (`workflow_esm_config`), which a schedule also
//! invokes to fire durable timers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml_ng::Value;
use statecast::dynamo::{TableSpec, TABLE_SPECS};
use statecast_local::esm::{EsmConfig, StartingPosition};
use statecast_local::workflows::{workflow_esm_config, WORKFLOW_FUNCTION_TIMEOUT};

/// Variables `shared/src/config.rs` reads with a default (all but the table names), and the
/// functions (by binary) whose code uses each. A variable added to `config.rs` fails
/// `every_variable_the_code_reads_is_set_for_its_function` until it is listed here and set in
/// the template for those functions.
const OPTIONAL_CONFIG_VARS: &[(&str, &[&str])] = &[
    (
        "CONNECTIONS_ENDPOINT",
        &[
            "statecast-fanout",
            "statecast-fanout-pages",
            "statecast-default",
            "statecast-disconnect",
        ],
    ),
    ("DEFAULT_TENANT", &["statecast-connect"]),
    ("CONNECTION_TTL_SECONDS", &["statecast-connect"]),
    ("CALL_RETRY_BUDGET_MS", &["statecast-default", TRIGGER_BINARY]),
    ("MAX_STATE_BYTES", &["statecast-default", TRIGGER_BINARY]),
    ("SEND_CONCURRENCY", &["statecast-fanout", "statecast-fanout-pages"]),
    ("SUBSCRIPTION_SPREAD_AT", &["statecast-fanout"]),
    ("SUBSCRIPTION_SHARDS", &["statecast-fanout"]),
    ("PAGES_QUEUE_URL", &["statecast-fanout"]),
    ("BROADCAST_RATE_MAX", &["statecast-default"]),
    ("BROADCAST_RATE_WINDOW_MS", &["statecast-default"]),
];

/// Which route each function serves.
const ROUTES: [(&str, &str); 3] = [
    ("$connect", "statecast-connect"),
    ("$disconnect", "statecast-disconnect"),
    ("$default", "statecast-default"),
];

const AUTHORIZER_BINARY: &str = "statecast-authorizer";
const FANOUT_BINARY: &str = "statecast-fanout";
const WORKFLOW_BINARY: &str = "statecast-workflow";
const TRIGGER_BINARY: &str = "statecast-trigger";

/// The variables the trigger function reads through the application: each webhook trigger's
/// secret (`Secret::Env`).
fn trigger_secret_vars() -> BTreeSet<String> {
    use statecast::trigger::{Secret, Verification};
    let app = statecast::app::application().expect("valid");
    app.trigger_list()
        .iter()
        .filter_map(|t| match &t.webhook_settings()?.verification {
            Verification::Hmac { secret, .. } | Verification::Bearer { token: secret } => match secret {
                Secret::Env(name) => Some(name.clone()),
                Secret::Value(_) => None,
            },
            Verification::None => None,
        })
        .collect()
}

/// Which function reads each streamed table's stream (by `TableSpec::role`).
const STREAM_CONSUMERS: [(&str, &str); 2] = [("actors", FANOUT_BINARY), ("workflows", WORKFLOW_BINARY)];

/// DynamoDB data-plane calls a store could make: (what the source says, IAM action). IAM has no
/// `TransactWriteItems` or `TransactGetItems` action; it authorizes each item of a transaction as
/// the single-item operation it performs, so a transaction is detected by its item builders.
const DYNAMODB_CALLS: [(&str, &str); 14] = [
    (".get_item()", "GetItem"),
    (".put_item()", "PutItem"),
    (".update_item()", "UpdateItem"),
    (".delete_item()", "DeleteItem"),
    (".query()", "Query"),
    (".scan()", "Scan"),
    (".batch_get_item()", "BatchGetItem"),
    (".batch_write_item()", "BatchWriteItem"),
    (".execute_statement()", "PartiQLSelect"),
    ("Put::builder()", "PutItem"),
    ("Update::builder()", "UpdateItem"),
    ("Delete::builder()", "DeleteItem"),
    ("ConditionCheck::builder()", "ConditionCheckItem"),
    ("Get::builder()", "GetItem"),
];

/// The SDK calls that send a transaction; their items come from the builders in `DYNAMODB_CALLS`.
const TRANSACTION_CALLS: [&str; 2] = [".transact_write_items()", ".transact_get_items()"];

// ---------------------------------------------------------------- the workspace

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every `.rs` file under `dir`, concatenated.
fn rust_sources(dir: &Path) -> String {
    let mut text = String::new();
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            text.push_str(&rust_sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            text.push_str(&read(&path));
            text.push('\n');
        }
    }
    text
}

/// One crate under `functions/`.
#[derive(Debug)]
struct FunctionCrate {
    dir: String,
    binaries: Vec<String>,
    source: String,
}

impl FunctionCrate {
    /// The crate's Lambda binary (a function crate builds exactly one).
    fn binary(&self) -> &str {
        match self.binaries.as_slice() {
            [one] => one,
            other => panic!("functions/{} should build one binary, builds {other:?}", self.dir),
        }
    }

    /// Whether its `main` reads the shared `statecast::config::Config`.
    fn uses_shared_config(&self) -> bool {
        self.source.contains("statecast::config::Config")
    }
}

/// `[package] name` and the `[[bin]]` names of a manifest.
fn manifest_names(manifest: &str) -> (Option<String>, Vec<String>) {
    let (mut section, mut package, mut bins) = ("", None, Vec::new());
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() != "name" {
            continue;
        }
        let value = value.trim().trim_matches('"').to_owned();
        match section {
            "[package]" => package = Some(value),
            "[[bin]]" => bins.push(value),
            _ => {}
        }
    }
    (package, bins)
}

fn function_crates() -> Vec<FunctionCrate> {
    let functions = workspace().join("functions");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&functions)
        .expect("functions/ exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let name = dir.file_name().expect("named").to_string_lossy().into_owned();
            let (package, mut binaries) = manifest_names(&read(&dir.join("Cargo.toml")));
            let package = package.unwrap_or_else(|| panic!("functions/{name}/Cargo.toml has no [package] name"));
            if binaries.is_empty() && dir.join("src/main.rs").is_file() {
                binaries.push(package);
            }
            FunctionCrate {
                dir: name,
                binaries,
                source: rust_sources(&dir.join("src")),
            }
        })
        .collect()
}

/// `(callee, NAME)` for every call whose first argument is a string literal shaped like an
/// environment variable name: `var("X")`, `optional("X")`, `std::env::var("X")`, ...
fn env_reads(source: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find("(\"") {
        let callee_len = rest[..open]
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .map(char::len_utf8)
            .sum::<usize>();
        let callee = &rest[open - callee_len..open];
        let after = &rest[open + 2..];
        if let Some(end) = after.find('"') {
            let name = &after[..end];
            if !callee.is_empty() && is_env_name(name) {
                found.push((callee.to_owned(), name.to_owned()));
            }
        }
        rest = after;
    }
    found
}

/// Whether `source` contains `token` as a whole path segment: `Put::builder()` matches
/// `types::Put::builder()` but not `PutRequest::builder()` or `AttributeValueUpdate::builder()`.
fn mentions(source: &str, token: &str) -> bool {
    source.match_indices(token).any(|(at, _)| {
        token.starts_with('.')
            || !source[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

fn is_env_name(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// What `shared/src/config.rs` reads: (required, optional) names.
fn shared_config_vars() -> (BTreeSet<String>, BTreeSet<String>) {
    let reads = env_reads(&read(&workspace().join("shared/src/config.rs")));
    let required: BTreeSet<String> = reads
        .iter()
        .filter(|(c, _)| c == "var")
        .map(|(_, n)| n.clone())
        .collect();
    let optional = reads
        .into_iter()
        .map(|(_, n)| n)
        .filter(|n| !required.contains(n))
        .collect();
    (required, optional)
}

// ---------------------------------------------------------------- reading the template

fn get<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Mapping(m) => m.get(key),
        _ => None,
    }
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| get(v, key))
}

/// A plain string (never an intrinsic).
fn text(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        _ => None,
    }
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A list, or a single value where CloudFormation accepts one (`Action: x`).
fn one_or_many(value: &Value) -> Vec<&Value> {
    match value {
        Value::Sequence(items) => items.iter().collect(),
        other => vec![other],
    }
}

fn entries(value: &Value) -> Vec<(&str, &Value)> {
    match value {
        Value::Mapping(m) => m.iter().filter_map(|(k, v)| Some((text(k)?, v))).collect(),
        _ => Vec::new(),
    }
}

/// An intrinsic in short (`!Ref X`) or long (`{Ref: X}`, `{Fn::Sub: ..}`) form: its name
/// without `Fn::` and its argument.
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => Some((tagged.tag.to_string().trim_start_matches('!').to_owned(), &tagged.value)),
        Value::Mapping(m) if m.len() == 1 => {
            let (key, argument) = m.iter().next()?;
            let key = text(key)?;
            let name = key
                .strip_prefix("Fn::")
                .or((key == "Ref" || key == "Condition").then_some(key))?;
            Some((name.to_owned(), argument))
        }
        _ => None,
    }
}

fn reference(value: &Value) -> Option<&str> {
    match intrinsic(value)? {
        (name, argument) if name == "Ref" => text(argument),
        _ => None,
    }
}

/// `!GetAtt Resource.Attribute` as (resource, attribute).
fn get_att(value: &Value) -> Option<(String, String)> {
    let (name, argument) = intrinsic(value)?;
    if name != "GetAtt" {
        return None;
    }
    if let Some(dotted) = text(argument) {
        let (resource, attribute) = dotted.split_once('.')?;
        return Some((resource.to_owned(), attribute.to_owned()));
    }
    match one_or_many(argument).as_slice() {
        [resource, attribute] => Some((text(resource)?.to_owned(), text(attribute)?.to_owned())),
        _ => None,
    }
}

/// The string of a `!Sub`.
fn sub(value: &Value) -> Option<&str> {
    let (name, argument) = intrinsic(value)?;
    if name != "Sub" {
        return None;
    }
    text(argument).or_else(|| one_or_many(argument).first().and_then(|s| text(s)))
}

/// The template, with the parameter values used to evaluate its conditions.
struct Stack {
    template: Value,
    parameters: BTreeMap<String, String>,
}

impl Stack {
    fn load() -> Self {
        let path = workspace().join("template.yaml");
        let template: Value =
            serde_yaml_ng::from_str(&read(&path)).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
        let parameters = entries(get(&template, "Parameters").unwrap_or(&Value::Null))
            .into_iter()
            .filter_map(|(name, p)| {
                let default = get(p, "Default")?;
                let value = text(default)
                    .map(str::to_owned)
                    .or_else(|| integer(default).map(|n| n.to_string()))?;
                Some((name.to_owned(), value))
            })
            .collect();
        Stack { template, parameters }
    }

    /// The template with `parameter` set to `value` (others at their defaults).
    fn with(mut self, parameter: &str, value: &str) -> Self {
        self.parameters.insert(parameter.to_owned(), value.to_owned());
        self
    }

    fn resources(&self) -> Vec<(&str, &Value)> {
        entries(get(&self.template, "Resources").expect("template has Resources"))
    }

    fn resource(&self, id: &str) -> &Value {
        at(&self.template, &["Resources", id]).unwrap_or_else(|| panic!("no resource {id}"))
    }

    fn of_type(&self, kind: &str) -> Vec<(&str, &Value)> {
        self.resources()
            .into_iter()
            .filter(|(_, r)| get(r, "Type").and_then(text) == Some(kind))
            .collect()
    }

    fn functions(&self) -> Vec<(&str, &Value)> {
        self.of_type("AWS::Serverless::Function")
    }

    fn function_by_binary(&self, binary: &str) -> (&str, &Value) {
        match self
            .functions()
            .into_iter()
            .filter(|(_, f)| function_binary(f) == Some(binary))
            .collect::<Vec<_>>()
            .as_slice()
        {
            [one] => *one,
            other => panic!("expected one function building {binary}, found {}", other.len()),
        }
    }

    /// A function property, falling back to `Globals: Function:`.
    fn function_property<'a>(&'a self, function: &'a Value, key: &str) -> Option<&'a Value> {
        at(function, &["Properties", key]).or_else(|| at(&self.template, &["Globals", "Function", key]))
    }

    /// A function's environment: `Globals` merged with its own variables.
    fn environment<'a>(&'a self, function: &'a Value) -> BTreeMap<&'a str, &'a Value> {
        let globals = at(&self.template, &["Globals", "Function", "Environment", "Variables"]);
        let own = at(function, &["Properties", "Environment", "Variables"]);
        [globals, own].into_iter().flatten().flat_map(entries).collect()
    }

    /// Evaluates a condition (`!Equals`, `!Not`, `!And`, `!Or`, `Condition`) under `self.parameters`.
    fn holds(&self, condition: &Value) -> bool {
        let (name, argument) = intrinsic(condition).unwrap_or_else(|| panic!("not a condition: {condition:?}"));
        let arguments = one_or_many(argument);
        match name.as_str() {
            "Equals" => {
                let [a, b] = arguments.as_slice() else {
                    panic!("Equals takes two values: {argument:?}")
                };
                self.scalar(a) == self.scalar(b)
            }
            "Not" => !self.holds(arguments[0]),
            "And" => arguments.iter().all(|c| self.holds(c)),
            "Or" => arguments.iter().any(|c| self.holds(c)),
            "Condition" => self.named_condition(text(argument).expect("condition name")),
            other => panic!("unsupported condition function {other}"),
        }
    }

    fn named_condition(&self, name: &str) -> bool {
        self.holds(at(&self.template, &["Conditions", name]).unwrap_or_else(|| panic!("no condition {name}")))
    }

    fn scalar(&self, value: &Value) -> String {
        match reference(value) {
            Some(parameter) => self.parameters.get(parameter).cloned().unwrap_or_default(),
            None => text(value)
                .map(str::to_owned)
                .unwrap_or_else(|| panic!("not a scalar: {value:?}")),
        }
    }

    /// Whether a resource is created under `self.parameters`.
    fn exists(&self, resource: &Value) -> bool {
        get(resource, "Condition")
            .and_then(text)
            .is_none_or(|name| self.named_condition(name))
    }

    /// A value with its `!If`s decided; `None` for `AWS::NoValue`.
    fn decide<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        match intrinsic(value) {
            Some((name, argument)) if name == "If" => match one_or_many(argument).as_slice() {
                [condition, yes, no] => {
                    let chosen = if self.named_condition(text(condition).expect("condition name")) {
                        yes
                    } else {
                        no
                    };
                    self.decide(chosen)
                }
                _ => panic!("If takes three values: {argument:?}"),
            },
            _ if reference(value) == Some("AWS::NoValue") => None,
            _ => Some(value),
        }
    }
}

fn function_binary(function: &Value) -> Option<&str> {
    at(function, &["Metadata", "BuildProperties", "Binary"]).and_then(text)
}

/// Every IAM statement in the template (function `Policies`, roles, managed and resource policies).
fn statements(value: &Value) -> Vec<&Value> {
    let mut found = Vec::new();
    match value {
        Value::Mapping(m) => {
            for (key, child) in m {
                if text(key) == Some("Statement") {
                    found.extend(one_or_many(child).into_iter().filter(|s| get(s, "Effect").is_some()));
                } else {
                    found.extend(statements(child));
                }
            }
        }
        Value::Sequence(items) => found.extend(items.iter().flat_map(statements)),
        Value::Tagged(tagged) => found.extend(statements(&tagged.value)),
        _ => {}
    }
    found
}

fn actions(statement: &Value) -> Vec<&str> {
    get(statement, "Action")
        .map(|a| one_or_many(a).into_iter().filter_map(text).collect())
        .unwrap_or_default()
}

fn statement_resources(statement: &Value) -> Vec<&Value> {
    get(statement, "Resource").map(one_or_many).unwrap_or_default()
}

// ---------------------------------------------------------------- the workspace's functions

/// Each crate under `functions/` is one `AWS::Serverless::Function`, built by cargo-lambda from
/// the workspace root (`CodeUri: .`) with `Binary` naming the crate's binary.
#[test]
fn every_function_crate_has_exactly_one_function_resource_built_from_the_workspace_root() {
    let stack = Stack::load();
    let crates = function_crates();
    assert!(
        crates.len() >= 6,
        "functions/ holds connect, disconnect, default, fanout, workflow, authorizer: {crates:?}"
    );
    let root = workspace().canonicalize().expect("workspace path");
    for krate in &crates {
        let binary = krate.binary();
        let (id, function) = stack.function_by_binary(binary);
        assert_eq!(
            at(function, &["Metadata", "BuildMethod"]).and_then(text),
            Some("rust-cargolambda"),
            "{id} must be built by cargo-lambda"
        );
        let code_uri = at(function, &["Properties", "CodeUri"])
            .or_else(|| at(&stack.template, &["Globals", "Function", "CodeUri"]))
            .and_then(text)
            .unwrap_or_else(|| panic!("{id} has no plain CodeUri"));
        let code_dir = workspace().join(code_uri).canonicalize().expect("CodeUri exists");
        assert_eq!(
            code_dir, root,
            "{id}: CodeUri must be the workspace root, where cargo-lambda's target/lambda/{binary} is"
        );
    }
}

/// No function resource builds something that is not the binary of a crate under `functions/`.
#[test]
fn every_function_resource_builds_the_binary_of_a_function_crate() {
    let stack = Stack::load();
    let binaries: BTreeSet<String> = function_crates().iter().map(|c| c.binary().to_owned()).collect();
    let functions = stack.functions();
    assert!(!functions.is_empty(), "the template declares functions");
    for (id, function) in functions {
        let binary = function_binary(function).unwrap_or_else(|| panic!("{id} has no BuildProperties.Binary"));
        assert!(
            binaries.contains(binary),
            "{id} builds {binary}, which no crate under functions/ defines: {binaries:?}"
        );
    }
}

/// Every function runs `bootstrap` on `provided.al2023`, arm64, logging JSON (its own or `Globals`).
#[test]
fn every_function_runs_bootstrap_on_al2023_arm64_with_json_logs() {
    let stack = Stack::load();
    for (id, function) in stack.functions() {
        let property = |key: &str| stack.function_property(function, key);
        assert_eq!(
            property("Runtime").and_then(text),
            Some("provided.al2023"),
            "{id} Runtime"
        );
        assert_eq!(property("Handler").and_then(text), Some("bootstrap"), "{id} Handler");
        let architectures: Vec<&str> = property("Architectures")
            .map(|a| one_or_many(a).into_iter().filter_map(text).collect())
            .unwrap_or_default();
        assert_eq!(architectures, ["arm64"], "{id} Architectures");
        // SAM merges a function's `LoggingConfig` map into the one under `Globals`.
        let log_format = at(function, &["Properties", "LoggingConfig", "LogFormat"])
            .or_else(|| at(&stack.template, &["Globals", "Function", "LoggingConfig", "LogFormat"]))
            .and_then(text);
        assert_eq!(log_format, Some("JSON"), "{id} LoggingConfig.LogFormat");
    }
}

// ---------------------------------------------------------------- environment

/// Every variable a function's code reads is set for it: the table names `config.rs` requires on
/// every function that uses it, each optional one on the functions listed in
/// `OPTIONAL_CONFIG_VARS`, and whatever a crate reads itself (the authorizer's `JWT_*`).
#[test]
fn every_variable_the_code_reads_is_set_for_its_function() {
    let stack = Stack::load();
    let (required, optional) = shared_config_vars();
    assert!(required.contains("CONNECTIONS_TABLE"), "config.rs parsed: {required:?}");
    let listed: BTreeSet<String> = OPTIONAL_CONFIG_VARS.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(
        optional, listed,
        "shared/src/config.rs reads these optional variables; set each in template.yaml for the functions that use it and list it in OPTIONAL_CONFIG_VARS"
    );
    let crates = function_crates();
    let mut missing = Vec::new();
    for krate in &crates {
        let (id, function) = stack.function_by_binary(krate.binary());
        let environment = stack.environment(function);
        let mut needed: BTreeSet<String> = env_reads(&krate.source).into_iter().map(|(_, n)| n).collect();
        if krate.binary() == TRIGGER_BINARY {
            needed.extend(trigger_secret_vars());
        }
        if krate.uses_shared_config() {
            needed.extend(required.iter().cloned());
        }
        for (name, users) in OPTIONAL_CONFIG_VARS {
            if users.contains(&krate.binary()) {
                assert!(
                    krate.uses_shared_config(),
                    "{name} is listed for {}, which does not read Config",
                    krate.dir
                );
                needed.insert((*name).to_owned());
            }
        }
        missing.extend(
            needed
                .into_iter()
                .filter(|n| !environment.contains_key(n.as_str()))
                .map(|n| format!("{id}: {n}")),
        );
    }
    let authorizer = crates
        .iter()
        .find(|c| c.binary() == AUTHORIZER_BINARY)
        .expect("authorizer crate");
    assert!(
        env_reads(&authorizer.source).iter().any(|(_, n)| n == "JWT_SECRET"),
        "the authorizer's variables are parsed from its source"
    );
    assert!(
        missing.is_empty(),
        "variables the code reads but template.yaml does not set: {missing:?}"
    );
}

/// A function's environment holds only variables its code reads (no stale or misspelt names).
#[test]
fn no_function_sets_a_variable_its_code_does_not_read() {
    let stack = Stack::load();
    let (required, optional) = shared_config_vars();
    let mut stale = Vec::new();
    for krate in function_crates() {
        let (id, function) = stack.function_by_binary(krate.binary());
        let mut read: BTreeSet<String> = env_reads(&krate.source).into_iter().map(|(_, n)| n).collect();
        if krate.binary() == TRIGGER_BINARY {
            read.extend(trigger_secret_vars());
        }
        if krate.uses_shared_config() {
            read.extend(required.iter().chain(&optional).cloned());
        }
        stale.extend(
            stack
                .environment(function)
                .into_keys()
                .filter(|n| !read.contains(*n))
                .map(|n| format!("{id}: {n}")),
        );
    }
    assert!(
        stale.is_empty(),
        "variables set in template.yaml that no code reads: {stale:?}"
    );
}

// ---------------------------------------------------------------- API

/// The API is a WebSocket API routed on the `action` field, with exactly the three routes.
#[test]
fn the_api_is_a_websocket_api_routed_on_the_action_field() {
    let stack = Stack::load();
    let apis = stack.of_type("AWS::ApiGatewayV2::Api");
    let [(api_id, api)] = apis.as_slice() else {
        panic!("expected one API, found {}", apis.len())
    };
    assert_eq!(
        at(api, &["Properties", "ProtocolType"]).and_then(text),
        Some("WEBSOCKET")
    );
    assert_eq!(
        at(api, &["Properties", "RouteSelectionExpression"]).and_then(text),
        Some("$request.body.action")
    );
    let route_keys: BTreeSet<&str> = stack
        .of_type("AWS::ApiGatewayV2::Route")
        .into_iter()
        .inspect(|(id, r)| {
            assert_eq!(
                at(r, &["Properties", "ApiId"]).and_then(reference),
                Some(*api_id),
                "{id}"
            )
        })
        .filter_map(|(_, r)| at(r, &["Properties", "RouteKey"]).and_then(text))
        .collect();
    assert_eq!(route_keys, ROUTES.iter().map(|(k, _)| *k).collect::<BTreeSet<_>>());
}

/// Each route proxies (`AWS_PROXY`) to its function, API Gateway may invoke that function for
/// that route, and `$default` answers through its route response.
#[test]
fn each_route_proxies_to_its_function_which_api_gateway_may_invoke() {
    let stack = Stack::load();
    for (route_key, binary) in ROUTES {
        let (function_id, _) = stack.function_by_binary(binary);
        let routes = stack.of_type("AWS::ApiGatewayV2::Route");
        let (route_id, route) = routes
            .iter()
            .find(|(_, r)| at(r, &["Properties", "RouteKey"]).and_then(text) == Some(route_key))
            .unwrap_or_else(|| panic!("no {route_key} route"));
        let target = at(route, &["Properties", "Target"])
            .and_then(sub)
            .expect("Target is a !Sub");
        let integration_id = target
            .strip_prefix("integrations/${")
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or_else(|| panic!("{route_id} Target {target:?}"));
        let integration = stack.resource(integration_id);
        assert_eq!(
            at(integration, &["Properties", "IntegrationType"]).and_then(text),
            Some("AWS_PROXY")
        );
        let uri = at(integration, &["Properties", "IntegrationUri"])
            .and_then(sub)
            .expect("IntegrationUri");
        assert!(
            uri.contains(&format!("/functions/${{{function_id}.Arn}}/invocations")),
            "{route_key} must invoke {function_id}: {uri}"
        );
        let permitted = stack.of_type("AWS::Lambda::Permission").into_iter().any(|(_, p)| {
            at(p, &["Properties", "FunctionName"]).and_then(reference) == Some(function_id)
                && at(p, &["Properties", "Principal"]).and_then(text) == Some("apigateway.amazonaws.com")
                && at(p, &["Properties", "SourceArn"])
                    .and_then(sub)
                    .is_some_and(|arn| arn.ends_with(&format!("/{route_key}")))
        });
        assert!(
            permitted,
            "no permission lets API Gateway invoke {function_id} for {route_key}"
        );
        if route_key == "$default" {
            assert_eq!(
                at(route, &["Properties", "RouteResponseSelectionExpression"]).and_then(text),
                Some("$default")
            );
            let answers = stack
                .of_type("AWS::ApiGatewayV2::RouteResponse")
                .into_iter()
                .any(|(_, r)| {
                    at(r, &["Properties", "RouteId"]).and_then(reference) == Some(*route_id)
                        && at(r, &["Properties", "RouteResponseKey"]).and_then(text) == Some("$default")
                });
            assert!(answers, "$default needs a $default route response to reply");
        }
    }
}

/// With `AuthMode` jwt, `$connect` runs a REQUEST authorizer backed by the authorizer function
/// (with an invoke permission) and no `IdentitySource` (a token comes from the query string *or*
/// a header, and API Gateway would demand every listed source); with none, the route is open and
/// connections get `DefaultTenant`. In both modes the stage serves a deployment that exists.
#[test]
fn connect_runs_the_request_authorizer_only_when_auth_mode_is_jwt() {
    let mode = at(&Stack::load().template, &["Parameters", "AuthMode"])
        .cloned()
        .expect("AuthMode parameter");
    let allowed: Vec<&str> = get(&mode, "AllowedValues")
        .map(one_or_many)
        .unwrap_or_default()
        .into_iter()
        .filter_map(text)
        .collect();
    assert_eq!(allowed, ["jwt", "none"]);
    assert_eq!(get(&mode, "Default").and_then(text), Some("jwt"));
    for auth_mode in allowed {
        let stack = Stack::load().with("AuthMode", auth_mode);
        let jwt = auth_mode == "jwt";
        let (connect_id, connect) = stack.function_by_binary("statecast-connect");
        let (authorizer_fn_id, authorizer_fn) = stack.function_by_binary(AUTHORIZER_BINARY);
        assert_eq!(
            stack.exists(authorizer_fn),
            jwt,
            "{authorizer_fn_id} exists only with AuthMode jwt"
        );
        let routes = stack.of_type("AWS::ApiGatewayV2::Route");
        let (_, route) = routes
            .iter()
            .find(|(_, r)| at(r, &["Properties", "RouteKey"]).and_then(text) == Some("$connect"))
            .expect("$connect route");
        let authorization = at(route, &["Properties", "AuthorizationType"]).and_then(|v| stack.decide(v));
        let authorizer_ref = at(route, &["Properties", "AuthorizerId"])
            .and_then(|v| stack.decide(v))
            .and_then(reference);
        let live_authorizers: Vec<_> = stack
            .of_type("AWS::ApiGatewayV2::Authorizer")
            .into_iter()
            .filter(|(_, a)| stack.exists(a))
            .collect();
        if jwt {
            assert_eq!(authorization.and_then(text), Some("CUSTOM"), "AuthMode {auth_mode}");
            let authorizer_id = authorizer_ref.expect("$connect names its authorizer");
            let authorizer = stack.resource(authorizer_id);
            assert!(stack.exists(authorizer));
            assert_eq!(
                at(authorizer, &["Properties", "AuthorizerType"]).and_then(text),
                Some("REQUEST")
            );
            assert!(
                at(authorizer, &["Properties", "IdentitySource"]).is_none(),
                "an IdentitySource would refuse clients that send the token the other way"
            );
            let uri = at(authorizer, &["Properties", "AuthorizerUri"])
                .and_then(sub)
                .expect("AuthorizerUri");
            assert!(uri.contains(&format!("${{{authorizer_fn_id}.Arn}}")), "{uri}");
            let permitted = stack.of_type("AWS::Lambda::Permission").into_iter().any(|(_, p)| {
                stack.exists(p)
                    && at(p, &["Properties", "FunctionName"]).and_then(reference) == Some(authorizer_fn_id)
                    && at(p, &["Properties", "SourceArn"])
                        .and_then(sub)
                        .is_some_and(|arn| arn.ends_with(&format!("/authorizers/${{{authorizer_id}}}")))
            });
            assert!(
                permitted,
                "API Gateway may not invoke {authorizer_fn_id} as an authorizer"
            );
        } else {
            assert_eq!(authorization.and_then(text), Some("NONE"), "AuthMode {auth_mode}");
            assert_eq!(authorizer_ref, None);
            assert!(live_authorizers.is_empty(), "no authorizer without auth");
            let tenant = stack
                .environment(connect)
                .get("DEFAULT_TENANT")
                .and_then(|v| reference(v));
            assert_eq!(tenant, Some("DefaultTenant"), "{connect_id} gets DefaultTenant");
        }
        let stages = stack.of_type("AWS::ApiGatewayV2::Stage");
        let [(_, stage)] = stages.as_slice() else {
            panic!("expected one stage")
        };
        let deployment_id = at(stage, &["Properties", "DeploymentId"])
            .and_then(|v| stack.decide(v))
            .and_then(reference)
            .expect("the stage names its deployment");
        let deployment = stack.resource(deployment_id);
        assert!(
            stack.exists(deployment),
            "AuthMode {auth_mode}: {deployment_id} is not created"
        );
        let depends: Vec<&str> = get(deployment, "DependsOn")
            .map(one_or_many)
            .unwrap_or_default()
            .into_iter()
            .filter_map(text)
            .collect();
        let connect_route_id = routes
            .iter()
            .find(|(_, r)| at(r, &["Properties", "RouteKey"]).and_then(text) == Some("$connect"))
            .map(|(id, _)| *id)
            .expect("$connect route");
        assert!(
            depends.contains(&connect_route_id),
            "{deployment_id} must snapshot after the routes: {depends:?}"
        );
    }
}

/// The stage throttles every route with the `Throttling*` parameters.
#[test]
fn the_stage_throttles_every_route_from_the_parameters() {
    let stack = Stack::load();
    let stages = stack.of_type("AWS::ApiGatewayV2::Stage");
    let [(_, stage)] = stages.as_slice() else {
        panic!("expected one stage")
    };
    for setting in ["ThrottlingBurstLimit", "ThrottlingRateLimit"] {
        let parameter = at(stage, &["Properties", "DefaultRouteSettings", setting])
            .and_then(reference)
            .unwrap_or_else(|| panic!("DefaultRouteSettings.{setting} is not a !Ref"));
        assert_eq!(parameter, setting);
        let kind = at(&stack.template, &["Parameters", parameter, "Type"]).and_then(text);
        assert_eq!(kind, Some("Number"), "parameter {parameter}");
    }
}

// ---------------------------------------------------------------- IAM

/// No IAM statement allows `dynamodb:Scan` or a wildcard action (`*`, `dynamodb:*`, `Get*`), uses
/// `NotAction`/`NotResource`, or grants a data action on `*`; every function policy is an inline
/// statement list (SAM policy templates and managed policies would escape these checks).
#[test]
fn no_policy_grants_scan_wildcard_actions_or_data_actions_on_star() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for (id, function) in stack.functions() {
        for policy in get(function, "Properties")
            .and_then(|p| get(p, "Policies"))
            .map(one_or_many)
            .unwrap_or_default()
        {
            if get(policy, "Statement").is_none() {
                problems.push(format!("{id}: policy {policy:?} is not an inline statement list"));
            }
        }
    }
    let all = statements(&stack.template);
    assert!(all.len() >= 5, "statements found: {}", all.len());
    for statement in all {
        if get(statement, "Effect").and_then(text) != Some("Allow") {
            continue;
        }
        for forbidden in ["NotAction", "NotResource"] {
            if get(statement, forbidden).is_some() {
                problems.push(format!("{forbidden} in {statement:?}"));
            }
        }
        let actions = actions(statement);
        if actions.is_empty() {
            problems.push(format!("no plain Action list in {statement:?}"));
        }
        for action in &actions {
            if action.contains('*') || action.eq_ignore_ascii_case("dynamodb:Scan") {
                problems.push(format!("action {action}"));
            }
        }
        for resource in statement_resources(statement) {
            if text(resource) == Some("*") {
                problems.push(format!("{actions:?} on *"));
            }
        }
    }
    assert!(problems.is_empty(), "IAM problems: {problems:#?}");
}

/// DynamoDB is granted only the calls the store makes (all of which some function is granted),
/// on a table of this stack or one of its indexes.
#[test]
fn dynamodb_grants_are_the_calls_the_store_makes_on_tables_of_this_stack() {
    let stack = Stack::load();
    let store = rust_sources(&workspace().join("shared/src/dynamo"));
    let called: BTreeSet<String> = DYNAMODB_CALLS
        .iter()
        .filter(|(call, _)| mentions(&store, call))
        .map(|(_, action)| format!("dynamodb:{action}"))
        .collect();
    assert!(called.contains("dynamodb:Query"), "store calls parsed: {called:?}");
    for transaction in TRANSACTION_CALLS.iter().filter(|call| store.contains(*call)) {
        let items = DYNAMODB_CALLS
            .iter()
            .filter(|(call, _)| call.ends_with("::builder()") && mentions(&store, call))
            .count();
        assert!(
            items > 0,
            "the store calls {transaction} but no transaction item builder was found"
        );
    }
    let tables: BTreeMap<&str, &Value> = stack.of_type("AWS::DynamoDB::Table").into_iter().collect();
    let mut granted = BTreeSet::new();
    for (id, function) in stack.functions() {
        for statement in statements(function) {
            let dynamodb: Vec<&str> = actions(statement)
                .into_iter()
                .filter(|a| a.starts_with("dynamodb:"))
                .collect();
            if dynamodb.is_empty() {
                continue;
            }
            granted.extend(dynamodb.iter().map(|a| (*a).to_owned()));
            for resource in statement_resources(statement) {
                let on_table = get_att(resource).is_some_and(|(t, a)| a == "Arn" && tables.contains_key(t.as_str()));
                let on_index = sub(resource)
                    .and_then(|s| s.strip_prefix("${"))
                    .and_then(|s| s.split_once(".Arn}/index/"))
                    .is_some_and(|(table, index)| {
                        tables.get(table).is_some_and(|t| {
                            at(t, &["Properties", "GlobalSecondaryIndexes"])
                                .map(one_or_many)
                                .unwrap_or_default()
                                .iter()
                                .any(|g| get(g, "IndexName").and_then(text) == Some(index))
                        })
                    });
                assert!(
                    on_table || on_index,
                    "{id}: {dynamodb:?} on {resource:?}, not a table or index of this stack"
                );
            }
        }
    }
    let extra: Vec<_> = granted.difference(&called).collect();
    assert!(
        extra.is_empty(),
        "granted but never called by shared/src/dynamo: {extra:?}"
    );
    let ungranted: Vec<_> = called.difference(&granted).collect();
    assert!(
        ungranted.is_empty(),
        "called by the store but granted to no function: {ungranted:?}"
    );
}

/// `execute-api:ManageConnections` is granted only on this API's stage, for the `@connections`
/// methods the sender calls (POST; GET and DELETE only if it ever uses them).
#[test]
fn connections_may_only_be_managed_on_this_stage_with_the_methods_the_sender_uses() {
    let stack = Stack::load();
    let sender = read(&workspace().join("shared/src/connections_api.rs"));
    let mut methods = BTreeSet::from(["POST"]);
    if sender.contains(".get_connection()") {
        methods.insert("GET");
    }
    if sender.contains(".delete_connection()") {
        methods.insert("DELETE");
    }
    let (api_id, _) = stack.of_type("AWS::ApiGatewayV2::Api")[0];
    let mut granted = BTreeSet::new();
    for statement in statements(&stack.template) {
        if !actions(statement).contains(&"execute-api:ManageConnections") {
            continue;
        }
        for resource in statement_resources(statement) {
            let arn = sub(resource).unwrap_or_else(|| panic!("ManageConnections on {resource:?}"));
            let prefix = format!(":${{{api_id}}}/${{StageName}}/");
            let (_, rest) = arn
                .split_once(&prefix)
                .unwrap_or_else(|| panic!("{arn} is not this API's stage"));
            let (method, path) = rest.split_once('/').expect("method/path");
            assert_eq!(path, "@connections/*", "{arn}");
            granted.insert(method.to_owned());
        }
    }
    let granted: BTreeSet<&str> = granted.iter().map(String::as_str).collect();
    assert_eq!(granted, methods);
}

// ---------------------------------------------------------------- tables

fn table_for<'a>(stack: &'a Stack, spec: &TableSpec) -> (&'a str, &'a Value) {
    let variable = format!("{}_TABLE", spec.role.to_uppercase());
    let ids: BTreeSet<&str> = stack
        .functions()
        .into_iter()
        .filter_map(|(_, f)| stack.environment(f).get(variable.as_str()).and_then(|v| reference(v)))
        .collect();
    let [id] = ids.into_iter().collect::<Vec<_>>()[..] else {
        panic!("{variable} should name one table resource")
    };
    (id, stack.resource(id))
}

fn key_schema(schema: Option<&Value>) -> (Option<&str>, Option<&str>) {
    let elements = schema.map(one_or_many).unwrap_or_default();
    let key = |kind: &str| {
        elements
            .iter()
            .find(|e| get(e, "KeyType").and_then(text) == Some(kind))
            .and_then(|e| get(e, "AttributeName").and_then(text))
    };
    assert!(elements.len() <= 2, "{elements:?}");
    (key("HASH"), key("RANGE"))
}

/// Each table's keys, attribute definitions, GSI, TTL attribute and stream equal
/// `statecast::dynamo::TABLE_SPECS`, billed on demand with point-in-time recovery.
#[test]
fn tables_match_table_specs() {
    let stack = Stack::load();
    let mut declared = BTreeSet::new();
    for spec in TABLE_SPECS {
        let (id, table) = table_for(&stack, &spec);
        declared.insert(id);
        let property = |key: &str| at(table, &["Properties", key]);
        assert_eq!(
            key_schema(property("KeySchema")),
            (Some(spec.partition_key), spec.sort_key),
            "{id} keys"
        );
        let indexes = property("GlobalSecondaryIndexes").map(one_or_many).unwrap_or_default();
        let mut attributes = BTreeSet::from([spec.partition_key]);
        attributes.extend(spec.sort_key);
        match spec.index {
            Some((name, pk, sk)) => {
                let [index] = indexes.as_slice() else {
                    panic!("{id} should have one GSI")
                };
                assert_eq!(get(index, "IndexName").and_then(text), Some(name), "{id} GSI name");
                assert_eq!(
                    key_schema(get(index, "KeySchema")),
                    (Some(pk), Some(sk)),
                    "{id} GSI keys"
                );
                let projection = at(index, &["Projection", "ProjectionType"]).and_then(text);
                let included: Vec<&str> = at(index, &["Projection", "NonKeyAttributes"])
                    .map(one_or_many)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(text)
                    .collect();
                match spec.index_includes {
                    [] => assert_eq!(projection, Some("KEYS_ONLY"), "{id} GSI projection"),
                    _ => assert_eq!(
                        (projection, included.as_slice()),
                        (Some("INCLUDE"), spec.index_includes),
                        "{id} GSI projection"
                    ),
                }
                attributes.extend([pk, sk]);
            }
            None => assert!(indexes.is_empty(), "{id} has no GSI in TABLE_SPECS"),
        }
        let definitions: BTreeMap<&str, &str> = property("AttributeDefinitions")
            .map(one_or_many)
            .unwrap_or_default()
            .into_iter()
            .map(|d| {
                let name = get(d, "AttributeName").and_then(text).expect("AttributeName");
                (name, get(d, "AttributeType").and_then(text).expect("AttributeType"))
            })
            .collect();
        assert_eq!(
            definitions,
            attributes.iter().map(|a| (*a, "S")).collect(),
            "{id} attributes"
        );
        let ttl = property("TimeToLiveSpecification")
            .filter(|t| get(t, "Enabled").and_then(boolean) == Some(true))
            .and_then(|t| get(t, "AttributeName").and_then(text));
        assert_eq!(ttl, spec.ttl_attribute, "{id} TTL");
        let stream = property("StreamSpecification")
            .and_then(|s| get(s, "StreamViewType"))
            .and_then(text);
        assert_eq!(stream, spec.stream.then_some("NEW_AND_OLD_IMAGES"), "{id} stream");
        assert_eq!(
            property("BillingMode").and_then(text),
            Some("PAY_PER_REQUEST"),
            "{id} billing"
        );
        let pitr = property("PointInTimeRecoverySpecification").and_then(|p| get(p, "PointInTimeRecoveryEnabled"));
        assert_eq!(pitr.and_then(boolean), Some(true), "{id} PITR");
    }
    let all: BTreeSet<&str> = stack
        .of_type("AWS::DynamoDB::Table")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(all, declared, "every table in template.yaml is one of TABLE_SPECS");
}

/// Tables of application state (no TTL: actors, workflows) outlive the stack and a replacement
/// (`Retain`); tables of live sockets (with TTL) go with it.
#[test]
fn state_tables_are_retained_and_socket_tables_deleted() {
    let stack = Stack::load();
    let mut retained = 0;
    for spec in TABLE_SPECS {
        let (id, table) = table_for(&stack, &spec);
        let expected = if spec.ttl_attribute.is_none() {
            retained += 1;
            "Retain"
        } else {
            "Delete"
        };
        for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
            assert_eq!(get(table, policy).and_then(text), Some(expected), "{id} {policy}");
        }
    }
    assert!(retained >= 2, "actors and workflows hold state");
}

// ---------------------------------------------------------------- the stream mappings

/// The spec of the table with `role`.
fn spec(role: &str) -> TableSpec {
    TABLE_SPECS
        .into_iter()
        .find(|s| s.role == role)
        .unwrap_or_else(|| panic!("no {role} table in TABLE_SPECS"))
}

/// A function's events of `kind` (`DynamoDB`, `Schedule`, ...), by name.
fn events_of<'a>(function: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    entries(at(function, &["Properties", "Events"]).unwrap_or(&Value::Null))
        .into_iter()
        .filter(|(_, e)| get(e, "Type").and_then(text) == Some(kind))
        .collect()
}

/// Every DynamoDB stream event in the template, with its function's id.
fn stream_events(stack: &Stack) -> Vec<(&str, &Value)> {
    stack
        .functions()
        .into_iter()
        .flat_map(|(id, f)| events_of(f, "DynamoDB").into_iter().map(move |(_, e)| (id, e)))
        .collect()
}

/// The function building `binary` and its one DynamoDB stream event.
fn stream_event<'a>(stack: &'a Stack, binary: &str) -> (&'a str, &'a Value, &'a Value) {
    let (id, function) = stack.function_by_binary(binary);
    match events_of(function, "DynamoDB").as_slice() {
        [(_, event)] => (id, function, event),
        other => panic!("{id} should have one DynamoDB stream event, has {}", other.len()),
    }
}

/// `binary`'s stream event and timeout are `esm` (what local mode's emulator runs it with), and it
/// reads the stream of the `role` table.
fn assert_stream_mapping(stack: &Stack, binary: &str, role: &str, esm: &EsmConfig) {
    let (id, function, event) = stream_event(stack, binary);
    let setting =
        |key: &str| at(event, &["Properties", key]).unwrap_or_else(|| panic!("{id} stream event has no {key}"));
    let seconds = |d: Duration| if d == Duration::MAX { -1 } else { d.as_secs() as i64 };
    assert_eq!(
        integer(setting("BatchSize")),
        Some(esm.batch_size as i64),
        "{id} BatchSize"
    );
    assert_eq!(
        integer(setting("MaximumBatchingWindowInSeconds")),
        Some(esm.batching_window.as_secs() as i64),
        "{id} MaximumBatchingWindowInSeconds"
    );
    assert_eq!(
        integer(setting("MaximumRetryAttempts")),
        Some(i64::from(esm.max_retry_attempts)),
        "{id} MaximumRetryAttempts"
    );
    assert_eq!(
        integer(setting("MaximumRecordAgeInSeconds")),
        Some(seconds(esm.max_record_age)),
        "{id} MaximumRecordAgeInSeconds"
    );
    assert_eq!(
        boolean(setting("BisectBatchOnFunctionError")),
        Some(esm.bisect_on_error),
        "{id} BisectBatchOnFunctionError"
    );
    let position = match esm.starting_position {
        StartingPosition::TrimHorizon => "TRIM_HORIZON",
        StartingPosition::Latest => "LATEST",
    };
    assert_eq!(
        text(setting("StartingPosition")),
        Some(position),
        "{id} StartingPosition"
    );
    let reports = one_or_many(setting("FunctionResponseTypes"))
        .into_iter()
        .any(|t| text(t) == Some("ReportBatchItemFailures"));
    assert_eq!(reports, esm.report_batch_item_failures, "{id} FunctionResponseTypes");
    let timeout = stack.function_property(function, "Timeout").and_then(integer);
    assert_eq!(timeout, Some(esm.function_timeout.as_secs() as i64), "{id} Timeout");
    let table = spec(role);
    assert!(table.stream, "the {role} table has a stream in TABLE_SPECS");
    let (table_id, _) = table_for(stack, &table);
    assert_eq!(
        get_att(setting("Stream")),
        Some((table_id.to_owned(), "StreamArn".to_owned())),
        "{id} reads {table_id}'s stream"
    );
}

/// The fan-out's stream event and timeout are what local mode's emulator runs with
/// (`EsmConfig::default()`), reading the actors table's stream.
#[test]
fn fanout_stream_mapping_matches_the_local_emulator_defaults() {
    let stack = Stack::load();
    assert_stream_mapping(&stack, FANOUT_BINARY, "actors", &EsmConfig::default());
}

/// The workflow function reads the workflows table's stream with the settings local mode runs it
/// with (`workflow_esm_config`: the fan-out's, with `WORKFLOW_FUNCTION_TIMEOUT`, 900 s).
#[test]
fn workflow_stream_mapping_matches_the_local_emulator() {
    let stack = Stack::load();
    let esm = workflow_esm_config(&EsmConfig::default());
    assert_eq!(esm.function_timeout, WORKFLOW_FUNCTION_TIMEOUT);
    assert_stream_mapping(&stack, WORKFLOW_BINARY, "workflows", &esm);
}

/// Each streamed table of `TABLE_SPECS` is read by exactly one mapping, and no mapping reads
/// anything else (a second consumer of a stream would run its records twice).
#[test]
fn every_streamed_table_has_exactly_one_mapping() {
    let stack = Stack::load();
    let mut read: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (id, event) in stream_events(&stack) {
        let (table, attribute) = at(event, &["Properties", "Stream"])
            .and_then(get_att)
            .unwrap_or_else(|| panic!("{id}'s stream event needs Stream: !GetAtt Table.StreamArn"));
        assert_eq!(attribute, "StreamArn", "{id}");
        read.entry(table).or_default().push(id);
    }
    let streamed: BTreeSet<&str> = TABLE_SPECS.iter().filter(|s| s.stream).map(|s| s.role).collect();
    assert_eq!(
        streamed,
        STREAM_CONSUMERS.iter().map(|(role, _)| *role).collect(),
        "TABLE_SPECS streams these tables; name each one's consumer in STREAM_CONSUMERS"
    );
    let expected: BTreeMap<String, Vec<&str>> = STREAM_CONSUMERS
        .iter()
        .map(|(role, binary)| {
            let (table, _) = table_for(&stack, &spec(role));
            (table.to_owned(), vec![stack.function_by_binary(binary).0])
        })
        .collect();
    assert_eq!(read, expected, "stream mappings by table");
}

/// A schedule invokes the workflow function at a fixed `rate(...)`, at least every five minutes, to
/// fire due durable timers (nothing else would: a timer coming due writes no item, so the stream
/// has nothing to deliver).
#[test]
fn a_schedule_invokes_the_workflow_function_to_fire_timers() {
    let stack = Stack::load();
    let (id, function) = stack.function_by_binary(WORKFLOW_BINARY);
    let schedules = events_of(function, "Schedule");
    let [(name, event)] = schedules.as_slice() else {
        panic!("{id} should have one Schedule event, has {}", schedules.len())
    };
    let expression = at(event, &["Properties", "Schedule"])
        .and_then(text)
        .unwrap_or_else(|| panic!("{id}.{name} has no plain Schedule"));
    let rate = expression
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{id}.{name}: {expression:?} is not a rate(...) expression"));
    let (value, unit) = rate.split_once(' ').unwrap_or_else(|| panic!("{expression:?}"));
    let value: u64 = value
        .parse()
        .unwrap_or_else(|_| panic!("{expression:?}: not a whole number"));
    let unit_seconds = match unit {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        other => panic!("{expression:?}: unknown unit {other:?}"),
    };
    assert!(value > 0, "{expression:?}");
    assert_eq!(
        unit.ends_with('s'),
        value != 1,
        "{expression:?}: EventBridge wants `1 minute`, `5 minutes`"
    );
    assert!(
        value * unit_seconds <= 300,
        "{expression:?}: durable timers would fire more than five minutes late"
    );
    let enabled = at(event, &["Properties", "Enabled"]).and_then(boolean);
    let state = at(event, &["Properties", "State"]).and_then(text);
    assert!(
        enabled != Some(false) && state != Some("DISABLED"),
        "{id}.{name} is switched off"
    );
}

/// Every `FunctionResponseTypes` names only `ReportBatchItemFailures`, the one value Lambda accepts.
#[test]
fn function_response_types_are_valid() {
    let stack = Stack::load();
    let mut seen = 0;
    for (id, function) in stack.functions() {
        for (name, event) in entries(at(function, &["Properties", "Events"]).unwrap_or(&Value::Null)) {
            let Some(types) = at(event, &["Properties", "FunctionResponseTypes"]) else {
                continue;
            };
            for value in one_or_many(types) {
                seen += 1;
                assert_eq!(text(value), Some("ReportBatchItemFailures"), "{id}.{name}");
            }
        }
    }
    assert!(seen > 0, "the stream event reports partial batch failures");
}

/// Batches a stream mapping gives up on are described on an SQS queue of this stack (SAM grants
/// the send because the destination says `Type: SQS`), one queue per mapping, whose URL is an output.
#[test]
fn discarded_stream_batches_go_to_an_sqs_queue_of_this_stack() {
    let stack = Stack::load();
    let outputs = entries(get(&stack.template, "Outputs").expect("Outputs"));
    let events = stream_events(&stack);
    assert!(
        events.len() >= 2,
        "the fan-out's and the workflow function's stream events"
    );
    let mut queues = BTreeSet::new();
    for (id, event) in events {
        let on_failure = at(event, &["Properties", "DestinationConfig", "OnFailure"])
            .unwrap_or_else(|| panic!("{id}'s stream event has no on-failure destination"));
        assert_eq!(get(on_failure, "Type").and_then(text), Some("SQS"), "{id}");
        let (queue, attribute) = get(on_failure, "Destination")
            .and_then(get_att)
            .unwrap_or_else(|| panic!("{id}: Destination: !GetAtt Queue.Arn"));
        assert_eq!(attribute, "Arn", "{id}");
        assert_eq!(
            get(stack.resource(&queue), "Type").and_then(text),
            Some("AWS::SQS::Queue"),
            "{id}"
        );
        assert!(
            outputs
                .iter()
                .any(|(_, o)| get(o, "Value").and_then(reference) == Some(queue.as_str())),
            "an output gives {queue}'s URL"
        );
        assert!(queues.insert(queue.clone()), "{queue} is shared by two mappings");
    }
}

/// The outputs give the `wss://` URL and the `https://` `@connections` endpoint of the stage, and
/// the fan-out posts to that same endpoint.
#[test]
fn outputs_give_the_websocket_url_and_the_endpoint_the_fanout_posts_to() {
    let stack = Stack::load();
    let output = |name: &str| {
        at(&stack.template, &["Outputs", name, "Value"])
            .and_then(sub)
            .unwrap_or_else(|| panic!("output {name} is not a !Sub"))
    };
    let url = output("WebSocketUrl");
    let endpoint = output("ConnectionsEndpoint");
    assert!(url.starts_with("wss://") && url.ends_with("/${StageName}"), "{url}");
    assert!(
        endpoint.starts_with("https://") && endpoint.ends_with("/${StageName}"),
        "{endpoint}"
    );
    assert_eq!(
        url.trim_start_matches("wss://"),
        endpoint.trim_start_matches("https://")
    );
    let (_, fanout) = stack.function_by_binary(FANOUT_BINARY);
    let posts_to = stack
        .environment(fanout)
        .get("CONNECTIONS_ENDPOINT")
        .and_then(|v| sub(v));
    assert_eq!(posts_to, Some(endpoint));
}

/// Dashboard, alarms, access logs, log groups, parameter patterns and the JWT secret reference.
#[path = "template/operations.rs"]
mod operations;

// ---------------------------------------------------------------- triggers (issue 16)

/// Webhooks reach the trigger function only as `POST /hooks/{trigger}` (payload format 2.0) on
/// an HTTP API of this stack that throttles every route.
#[test]
fn webhooks_are_one_throttled_http_api_route_to_the_trigger_function() {
    let stack = Stack::load();
    let (id, function) = stack.function_by_binary(TRIGGER_BINARY);
    let hooks = events_of(function, "HttpApi");
    let [(name, event)] = hooks.as_slice() else {
        panic!("{id} should have one HttpApi event, has {}", hooks.len())
    };
    let property = |key: &str| at(event, &["Properties", key]).and_then(text);
    assert_eq!(property("Method"), Some("POST"), "{id}.{name}");
    assert_eq!(property("Path"), Some("/hooks/{trigger}"), "{id}.{name}");
    assert_eq!(property("PayloadFormatVersion"), Some("2.0"), "{id}.{name}");
    let api = at(event, &["Properties", "ApiId"])
        .and_then(reference)
        .unwrap_or_else(|| panic!("{id}.{name}: ApiId: !Ref an HttpApi of this stack"));
    let api = stack.resource(api);
    assert_eq!(get(api, "Type").and_then(text), Some("AWS::Serverless::HttpApi"));
    for limit in ["ThrottlingBurstLimit", "ThrottlingRateLimit"] {
        assert!(
            at(api, &["Properties", "DefaultRouteSettings", limit]).is_some(),
            "the webhook API sets {limit}"
        );
    }
}

/// `queue_id` is an SQS queue of this stack with a dead-letter queue (of the same kind) after
/// at least one receive, a visibility timeout of at least six times `function`'s timeout, and
/// `function` reads it with partial batch failures.
fn assert_queue_mapping(stack: &Stack, id: &str, function: &Value, queue_id: &str) {
    let queue = stack.resource(queue_id);
    assert_eq!(get(queue, "Type").and_then(text), Some("AWS::SQS::Queue"));
    let timeout = stack
        .function_property(function, "Timeout")
        .and_then(integer)
        .unwrap_or_else(|| panic!("{id}'s timeout"));
    let visibility = at(queue, &["Properties", "VisibilityTimeout"]).and_then(integer);
    assert!(
        visibility >= Some(6 * timeout),
        "{queue_id}: VisibilityTimeout ≥ 6 × {timeout}"
    );
    let (dlq, _) = at(queue, &["Properties", "RedrivePolicy", "deadLetterTargetArn"])
        .and_then(get_att)
        .unwrap_or_else(|| panic!("{queue_id} has a dead-letter queue"));
    let dead = stack.resource(&dlq);
    assert_eq!(get(dead, "Type").and_then(text), Some("AWS::SQS::Queue"));
    let fifo = |q: &Value| at(q, &["Properties", "FifoQueue"]).and_then(boolean).unwrap_or(false);
    assert_eq!(fifo(dead), fifo(queue), "{dlq} is FIFO exactly when {queue_id} is");
    let receives = at(queue, &["Properties", "RedrivePolicy", "maxReceiveCount"]).and_then(integer);
    assert!(receives.is_some_and(|n| n >= 1), "{queue_id}: maxReceiveCount");
    let mapped = events_of(function, "SQS").iter().any(|(_, event)| {
        at(event, &["Properties", "Queue"]).and_then(get_att) == Some((queue_id.to_owned(), "Arn".to_owned()))
            && at(event, &["Properties", "FunctionResponseTypes"])
                .map(one_or_many)
                .is_some_and(|t| t.iter().any(|v| text(v) == Some("ReportBatchItemFailures")))
    });
    assert!(mapped, "{id} reads {queue_id} with ReportBatchItemFailures");
}

/// Each queue trigger's queue is a queue of this stack named in `TRIGGER_QUEUES`, mapped with
/// partial batch failures, with a dead-letter queue and a visibility timeout of at least six
/// times the function's timeout.
#[test]
fn every_queue_trigger_reads_a_queue_of_this_stack_with_a_dead_letter_queue() {
    use statecast::trigger::Source;
    let stack = Stack::load();
    let (id, function) = stack.function_by_binary(TRIGGER_BINARY);
    let routes = stack
        .environment(function)
        .get("TRIGGER_QUEUES")
        .and_then(|v| sub(v))
        .unwrap_or_else(|| panic!("{id}: TRIGGER_QUEUES is a !Sub"))
        .to_owned();
    let app = statecast::app::application().expect("valid");
    let queues: Vec<&str> = app
        .trigger_list()
        .iter()
        .filter_map(|t| match &t.source {
            Source::Queue { queue } => Some(queue.as_str()),
            _ => None,
        })
        .collect();
    assert!(!queues.is_empty(), "the shipped application has a queue trigger");
    for queue in queues {
        let resource_id = routes
            .split(',')
            .find_map(|pair| pair.strip_prefix(&format!("{queue}=${{"))?.strip_suffix(".Arn}"))
            .unwrap_or_else(|| panic!("TRIGGER_QUEUES names no queue for {queue:?}: {routes}"));
        assert_queue_mapping(&stack, id, function, resource_id);
    }
}

/// Each schedule trigger has a Schedule event with its expression whose input names it, and
/// each webhook secret is a Secrets Manager dynamic reference named by a parameter.
#[test]
fn schedules_and_webhook_secrets_of_the_application_are_in_the_template() {
    use statecast::trigger::Source;
    let stack = Stack::load();
    let (id, function) = stack.function_by_binary(TRIGGER_BINARY);
    let schedules = events_of(function, "Schedule");
    let app = statecast::app::application().expect("valid");
    for trigger in app.trigger_list() {
        let Source::Schedule { expression } = &trigger.source else {
            continue;
        };
        let found = schedules.iter().any(|(_, event)| {
            let input = at(event, &["Properties", "Input"])
                .and_then(text)
                .and_then(|i| serde_json::from_str::<serde_json::Value>(i).ok());
            at(event, &["Properties", "Schedule"]).and_then(text) == Some(expression.as_str())
                && input == Some(serde_json::json!({"schedule": trigger.name}))
        });
        assert!(
            found,
            "{id} has a Schedule event {expression} with input {{\"schedule\": {:?}}}",
            trigger.name
        );
    }
    let environment = stack.environment(function);
    for name in trigger_secret_vars() {
        let value = environment
            .get(name.as_str())
            .and_then(|v| sub(v))
            .unwrap_or_else(|| panic!("{id}: {name} is a !Sub dynamic reference"));
        let parameter = value
            .strip_prefix("{{resolve:secretsmanager:${")
            .and_then(|rest| rest.strip_suffix("}:SecretString}}"))
            .unwrap_or_else(|| panic!("{id}: {name} resolves a Secrets Manager secret: {value}"));
        assert!(
            at(&stack.template, &["Parameters", parameter]).is_some(),
            "{name}'s secret is named by the parameter {parameter}"
        );
    }
}

/// The workflow function may read and change action guards (breakers, rate slots) in the calls
/// table, where `shared/src/dynamo/guards.rs` keeps them.
#[test]
fn the_workflow_function_may_keep_action_guards_in_the_calls_table() {
    let stack = Stack::load();
    let guards = read(&workspace().join("shared/src/dynamo/guards.rs"));
    assert!(guards.contains("self.tables.calls"), "guards live in the calls table");
    let (id, function) = stack.function_by_binary(WORKFLOW_BINARY);
    let on_calls: BTreeSet<&str> = statements(function)
        .into_iter()
        .filter(|s| {
            statement_resources(s)
                .iter()
                .any(|r| get_att(r) == Some(("CallsTable".to_owned(), "Arn".to_owned())))
        })
        .flat_map(actions)
        .collect();
    for action in ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"] {
        assert!(
            on_calls.contains(action),
            "{id} needs {action} on CallsTable: {on_calls:?}"
        );
    }
}

/// The fan-out's pages go to a FIFO queue of this stack (order per message group) with a FIFO
/// dead-letter queue, read by the page worker with partial batch failures; the fan-out may
/// only send to it, and the worker's visibility timeout leaves room for its retries.
#[test]
fn fanout_pages_go_through_a_fifo_queue_with_a_dead_letter_queue_to_the_page_worker() {
    let stack = Stack::load();
    let (fanout_id, fanout) = stack.function_by_binary(FANOUT_BINARY);
    let queue_id = stack
        .environment(fanout)
        .get("PAGES_QUEUE_URL")
        .and_then(|v| reference(v))
        .unwrap_or_else(|| panic!("{fanout_id}: PAGES_QUEUE_URL is a !Ref of a queue"))
        .to_owned();
    let queue = stack.resource(&queue_id);
    assert_eq!(at(queue, &["Properties", "FifoQueue"]).and_then(boolean), Some(true));
    let sends: Vec<&Value> = statements(fanout)
        .into_iter()
        .filter(|s| actions(s).iter().any(|a| a.starts_with("sqs:")))
        .collect();
    assert_eq!(sends.len(), 1);
    assert_eq!(actions(sends[0]), ["sqs:SendMessage"]);
    assert_eq!(
        statement_resources(sends[0])
            .into_iter()
            .filter_map(get_att)
            .collect::<Vec<_>>(),
        [(queue_id.clone(), "Arn".to_owned())]
    );

    let (worker_id, worker) = stack.function_by_binary("statecast-fanout-pages");
    assert_queue_mapping(&stack, worker_id, worker, &queue_id);
    let concurrency = events_of(worker, "SQS")
        .iter()
        .find_map(|(_, event)| at(event, &["Properties", "ScalingConfig", "MaximumConcurrency"]).and_then(integer));
    assert_eq!(
        concurrency,
        Some(statecast_local::pages::PageQueueConfig::default().workers as i64),
        "{worker_id}: MaximumConcurrency equals local mode's page workers"
    );
}
