//! What an operator of a deployed stack relies on: the dashboard, the alarms (and whom they
//! notify), the stage's access logs, log groups that exist before their functions write, the
//! `DefaultTenant` pattern (the code's tenant rule) and the JWT secret taken by dynamic reference.

use std::collections::BTreeSet;

use regex::Regex;
use serde_yaml_ng::Value;
use statecast::ids::TenantId;
use statecast::metrics::Metric;

use super::*;

const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:statecast-alarms";

/// The `${Name}` and `${Name.Attribute}` placeholders of a `!Sub` string.
fn placeholders(template: &str) -> BTreeSet<String> {
    let pattern = Regex::new(r"\$\{([A-Za-z0-9:.]+)\}").expect("placeholder pattern");
    pattern.captures_iter(template).map(|c| c[1].to_owned()).collect()
}

/// The dashboard's body with every placeholder replaced, parsed.
fn dashboard_body(stack: &Stack) -> serde_json::Value {
    let dashboards = stack.of_type("AWS::CloudWatch::Dashboard");
    let [(_, dashboard)] = dashboards.as_slice() else {
        panic!("expected one dashboard, found {}", dashboards.len())
    };
    let body = at(dashboard, &["Properties", "DashboardBody"])
        .and_then(sub)
        .expect("DashboardBody is a !Sub string");
    for name in placeholders(body) {
        let resource = name.split('.').next().unwrap_or_default();
        assert!(
            resource.starts_with("AWS::") || at(&stack.template, &["Resources", resource]).is_some(),
            "the dashboard names ${{{name}}}, which is no resource of the stack"
        );
    }
    let pattern = Regex::new(r"\$\{[A-Za-z0-9:.]+\}").expect("placeholder pattern");
    let text = pattern.replace_all(body, "placeholder");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("the dashboard body is not JSON: {e}\n{text}"))
}

/// Every metric the functions print appears on the dashboard (by name, in the `Statecast`
/// namespace or a `SEARCH` of it), and so do Lambda's errors, throttles and iterator age.
#[test]
fn the_dashboard_shows_every_metric_the_functions_print() {
    let stack = Stack::load();
    let body = dashboard_body(&stack);
    let widgets = body["widgets"].as_array().expect("widgets");
    assert!(widgets.len() >= 6, "{} widgets", widgets.len());
    let mut shown = BTreeSet::new();
    let searched_name = Regex::new(r#"MetricName="([A-Za-z]+)""#).expect("pattern");
    for widget in widgets {
        for line in widget["properties"]["metrics"].as_array().into_iter().flatten() {
            let line = line.as_array().expect("a metric line is an array");
            match line.first() {
                // `"..."` repeats the line above with another statistic.
                Some(serde_json::Value::String(repeat)) if repeat == "..." => {}
                Some(serde_json::Value::String(namespace)) => {
                    let name = line.get(1).and_then(|n| n.as_str()).expect("metric name");
                    shown.insert(format!("{namespace}/{name}"));
                }
                Some(serde_json::Value::Object(expression)) => {
                    let search = expression["expression"].as_str().expect("expression");
                    let name = searched_name
                        .captures(search)
                        .map(|c| c[1].to_owned())
                        .unwrap_or_else(|| panic!("a SEARCH names its metric: {search}"));
                    assert!(search.contains("{Statecast,"), "{search}");
                    shown.insert(format!("Statecast/{name}"));
                }
                other => panic!("unexpected metric line start {other:?}"),
            }
        }
    }
    let missing: Vec<String> = Metric::ALL
        .iter()
        .filter(|m| !m.local_only())
        .map(|m| format!("Statecast/{}", m.name()))
        .chain(["AWS/Lambda/Errors", "AWS/Lambda/Throttles", "AWS/Lambda/IteratorAge"].map(String::from))
        .filter(|name| !shown.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "not on the dashboard: {missing:?} (shown: {shown:?})"
    );
}

/// The alarms of the stack, with their properties.
fn alarms(stack: &Stack) -> Vec<(&str, &Value)> {
    stack
        .of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(id, alarm)| (id, get(alarm, "Properties").expect("alarm properties")))
        .collect()
}

fn alarm_on<'a>(stack: &'a Stack, namespace: &str, metric: &str, dimension: &str) -> Vec<(&'a str, &'a Value)> {
    alarms(stack)
        .into_iter()
        .filter(|(_, p)| {
            get(p, "Namespace").and_then(text) == Some(namespace)
                && get(p, "MetricName").and_then(text) == Some(metric)
                && get(p, "Dimensions")
                    .map(one_or_many)
                    .unwrap_or_default()
                    .iter()
                    .any(|d| get(d, "Value").is_some_and(|v| format!("{v:?}").contains(dimension)))
        })
        .collect()
}

/// Every queue a stream mapping discards batches to has an alarm that fires on one message.
#[test]
fn a_message_on_any_dead_letter_queue_raises_an_alarm() {
    let stack = Stack::load();
    let queues: Vec<String> = stream_events(&stack)
        .into_iter()
        .filter_map(|(_, event)| at(event, &["Properties", "DestinationConfig", "OnFailure", "Destination"]))
        .filter_map(get_att)
        .map(|(queue, _)| queue)
        .collect();
    assert_eq!(queues.len(), 2, "both stream mappings discard to a queue: {queues:?}");
    for queue in queues {
        let found = alarm_on(&stack, "AWS/SQS", "ApproximateNumberOfMessagesVisible", &queue);
        let [(id, alarm)] = found.as_slice() else {
            panic!("expected one alarm on {queue}, found {}", found.len())
        };
        assert_eq!(get(alarm, "Threshold").and_then(integer), Some(0), "{id}");
        assert_eq!(
            get(alarm, "ComparisonOperator").and_then(text),
            Some("GreaterThanThreshold"),
            "{id}"
        );
        assert_eq!(get(alarm, "Statistic").and_then(text), Some("Maximum"), "{id}");
    }
}

/// Each stream function has an iterator-age alarm at the `IteratorAgeAlarmSeconds` threshold
/// (IteratorAge is in milliseconds).
#[test]
fn a_stream_function_that_falls_behind_raises_an_alarm() {
    let stack = Stack::load();
    for binary in [FANOUT_BINARY, WORKFLOW_BINARY] {
        let (function_id, _) = stack.function_by_binary(binary);
        let found = alarm_on(&stack, "AWS/Lambda", "IteratorAge", function_id);
        let [(id, alarm)] = found.as_slice() else {
            panic!("expected one IteratorAge alarm on {function_id}, found {}", found.len())
        };
        let threshold = get(alarm, "Threshold")
            .and_then(sub)
            .expect("threshold from the parameter");
        assert_eq!(threshold, "${IteratorAgeAlarmSeconds}000", "{id} compares milliseconds");
        assert_eq!(get(alarm, "Statistic").and_then(text), Some("Maximum"), "{id}");
    }
    let parameter = at(&stack.template, &["Parameters", "IteratorAgeAlarmSeconds"]).expect("parameter");
    assert_eq!(get(parameter, "Type").and_then(text), Some("Number"));
}

/// One alarm sums `Errors` and one `Throttles` over every function that exists in each auth mode.
#[test]
fn errors_and_throttles_of_every_function_raise_an_alarm() {
    for auth_mode in ["jwt", "none"] {
        let stack = Stack::load().with("AuthMode", auth_mode);
        let functions: BTreeSet<&str> = stack
            .functions()
            .into_iter()
            .filter(|(_, f)| stack.exists(f))
            .map(|(id, _)| id)
            .collect();
        for metric in ["Errors", "Throttles"] {
            let covering: Vec<(&str, BTreeSet<&str>)> = alarms(&stack)
                .into_iter()
                .filter_map(|(id, p)| {
                    let queries: Vec<&Value> = one_or_many(get(p, "Metrics")?)
                        .into_iter()
                        .filter_map(|q| stack.decide(q))
                        .collect();
                    let covered: BTreeSet<&str> = queries
                        .iter()
                        .filter(|q| at(q, &["MetricStat", "Metric", "MetricName"]).and_then(text) == Some(metric))
                        .filter_map(|q| at(q, &["MetricStat", "Metric", "Dimensions"]))
                        .flat_map(one_or_many)
                        .filter_map(|d| get(d, "Value").and_then(reference))
                        .collect();
                    let sums = queries.iter().any(|q| {
                        get(q, "Expression").and_then(text) == Some("SUM(METRICS())")
                            && get(q, "ReturnData").and_then(boolean) == Some(true)
                    });
                    (sums && !covered.is_empty()).then_some((id, covered))
                })
                .collect();
            let [(id, covered)] = covering.as_slice() else {
                panic!("AuthMode {auth_mode}: expected one alarm summing {metric}, found {covering:?}")
            };
            assert_eq!(covered, &functions, "AuthMode {auth_mode}: {id} covers every function");
        }
    }
}

/// Every alarm notifies `AlarmTopicArn` on alarm and recovery when it is set, and nobody otherwise.
#[test]
fn alarms_notify_the_topic_parameter_only_when_it_is_set() {
    let pattern = at(
        &Stack::load().template,
        &["Parameters", "AlarmTopicArn", "AllowedPattern"],
    )
    .and_then(text)
    .map(|p| Regex::new(p).expect("AllowedPattern is a regex"))
    .expect("AlarmTopicArn has a pattern");
    assert!(pattern.is_match("") && pattern.is_match(TOPIC));
    assert!(!pattern.is_match("arn:aws:sqs:eu-west-1:123456789012:queue"));
    for (topic, expected) in [("", None), (TOPIC, Some("AlarmTopicArn"))] {
        let stack = Stack::load().with("AlarmTopicArn", topic);
        let alarms = alarms(&stack);
        assert!(alarms.len() >= 6, "{} alarms", alarms.len());
        for (id, alarm) in alarms {
            for key in ["AlarmActions", "OKActions"] {
                let actions = get(alarm, key).and_then(|v| stack.decide(v));
                let named = actions.map(|a| one_or_many(a).into_iter().filter_map(reference).collect::<Vec<_>>());
                assert_eq!(
                    named,
                    expected.map(|t| vec![t]),
                    "{id} {key} with AlarmTopicArn {topic:?}"
                );
            }
            assert_eq!(
                get(alarm, "TreatMissingData").and_then(text),
                Some("notBreaching"),
                "{id}: no data (no traffic) is not an incident"
            );
        }
    }
}

/// The stage writes one JSON line per request to a log group of the stack, with what an operator
/// searches by (request and connection ids, route, status, latency, errors).
#[test]
fn the_stage_writes_json_access_logs_to_a_log_group_with_retention() {
    let stack = Stack::load();
    let stages = stack.of_type("AWS::ApiGatewayV2::Stage");
    let [(_, stage)] = stages.as_slice() else {
        panic!("expected one stage")
    };
    let settings = at(stage, &["Properties", "AccessLogSettings"]).expect("AccessLogSettings");
    let (group, attribute) = get(settings, "DestinationArn")
        .and_then(get_att)
        .expect("DestinationArn");
    assert_eq!(attribute, "Arn");
    let group = stack.resource(&group);
    assert_eq!(get(group, "Type").and_then(text), Some("AWS::Logs::LogGroup"));
    assert!(at(group, &["Properties", "RetentionInDays"])
        .and_then(integer)
        .is_some());
    let format = get(settings, "Format").and_then(text).expect("Format");
    let line: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(format).unwrap_or_else(|e| panic!("the access log format is not JSON: {e}"));
    let variables: BTreeSet<&str> = line.values().filter_map(|v| v.as_str()).collect();
    for variable in [
        "$context.requestId",
        "$context.connectionId",
        "$context.routeKey",
        "$context.eventType",
        "$context.status",
        "$context.integration.latency",
        "$context.integration.error",
        "$context.error.message",
    ] {
        assert!(variables.contains(variable), "the access log lacks {variable}");
    }
    // Stage logs need the account's CloudWatch role; the stack sets one unless told not to.
    for (manage, exists) in [("true", true), ("false", false)] {
        let stack = Stack::load().with("ManageApiGatewayLogsRole", manage);
        let accounts = stack.of_type("AWS::ApiGateway::Account");
        let [(_, account)] = accounts.as_slice() else {
            panic!("expected one AWS::ApiGateway::Account")
        };
        assert_eq!(stack.exists(account), exists, "ManageApiGatewayLogsRole {manage}");
        assert_eq!(get(account, "DeletionPolicy").and_then(text), Some("Retain"));
    }
}

/// Each function logs to a log group of the stack with a retention, named in its
/// `LoggingConfig`: the group exists before the function runs, and its name does not depend on the
/// function (a group named after the function is created after it, racing its first write).
#[test]
fn every_function_logs_to_a_log_group_created_before_it() {
    let stack = Stack::load();
    for (id, function) in stack.functions() {
        let group_id = at(function, &["Properties", "LoggingConfig", "LogGroup"])
            .and_then(reference)
            .unwrap_or_else(|| panic!("{id} names its log group in LoggingConfig.LogGroup"));
        let group = stack.resource(group_id);
        assert_eq!(
            get(group, "Type").and_then(text),
            Some("AWS::Logs::LogGroup"),
            "{group_id}"
        );
        assert_eq!(
            get(group, "Condition"),
            get(function, "Condition"),
            "{group_id} exists with {id}"
        );
        assert!(
            at(group, &["Properties", "RetentionInDays"])
                .and_then(integer)
                .is_some(),
            "{group_id} keeps logs for a while, not forever"
        );
        let name = at(group, &["Properties", "LogGroupName"])
            .and_then(sub)
            .unwrap_or_default();
        let names: BTreeSet<String> = placeholders(name);
        assert!(
            names.iter().all(|n| n.starts_with("AWS::")),
            "{group_id}'s name waits for {names:?}"
        );
    }
}

/// `DefaultTenant`'s `AllowedPattern` accepts exactly the tenants `TenantId::new` accepts (and
/// empty, which refuses open connections): any other value would make every `$connect` fail.
#[test]
fn default_tenant_pattern_is_the_codes_tenant_rule() {
    let stack = Stack::load();
    let pattern = at(&stack.template, &["Parameters", "DefaultTenant", "AllowedPattern"])
        .and_then(text)
        .expect("DefaultTenant has an AllowedPattern");
    // CloudFormation matches the whole value.
    let pattern = Regex::new(&format!("^(?:{pattern})$")).expect("AllowedPattern is a regex");
    let long = "a".repeat(128);
    let too_long = "a".repeat(129);
    let samples = [
        "acme",
        "Acme-01",
        "team_a.b:c@d",
        long.as_str(),
        too_long.as_str(),
        "a/b",
        "a b",
        "ü",
        "a*",
        "tenant#1",
        "x\n",
        "-",
    ];
    for sample in samples {
        assert_eq!(
            pattern.is_match(sample),
            TenantId::new(sample).is_ok(),
            "DefaultTenant {sample:?}: the template and TenantId::new disagree"
        );
    }
    assert!(pattern.is_match(""), "empty stays allowed (refuses open connections)");
}

/// The HS256 key never is a template parameter: the authorizer's `JWT_SECRET` is a Secrets
/// Manager dynamic reference to `JwtSecretName` (empty when only a JWKS is used), and no
/// parameter is a secret typed in.
#[test]
fn the_jwt_secret_comes_from_secrets_manager_by_dynamic_reference() {
    let stack = Stack::load();
    for (name, parameter) in entries(get(&stack.template, "Parameters").expect("parameters")) {
        assert!(
            get(parameter, "NoEcho").is_none(),
            "{name} is a typed-in secret; take it by dynamic reference"
        );
    }
    let (_, authorizer) = stack.function_by_binary(AUTHORIZER_BINARY);
    let environment = stack.environment(authorizer);
    let secret = environment.get("JWT_SECRET").expect("JWT_SECRET is set");
    for (name, expected) in [("my/jwt-key", true), ("", false)] {
        let stack = Stack::load().with("JwtSecretName", name);
        let value = stack.decide(secret).expect("JWT_SECRET has a value");
        match expected {
            true => assert_eq!(
                sub(value),
                Some("{{resolve:secretsmanager:${JwtSecretName}:SecretString}}"),
                "JwtSecretName {name:?}"
            ),
            false => assert_eq!(text(value), Some(""), "without JwtSecretName JWT_SECRET is empty"),
        }
    }
    let rule = at(&stack.template, &["Rules", "JwtModeNeedsAKey"]).expect("rule");
    assert!(
        format!("{rule:?}").contains("JwtSecretName"),
        "jwt mode needs JwtSecretName or JwksUrl"
    );
}

/// Every function's X-Ray tracing follows `FunctionTracing` (off by default: PassThrough), so
/// the trace id a call logs with its request id is there when an operator turns tracing on.
#[test]
fn x_ray_tracing_of_every_function_follows_the_parameter() {
    let stack = Stack::load();
    let parameter = at(&stack.template, &["Parameters", "FunctionTracing"]).expect("FunctionTracing");
    let allowed: Vec<&str> = get(parameter, "AllowedValues")
        .map(one_or_many)
        .unwrap_or_default()
        .into_iter()
        .filter_map(text)
        .collect();
    assert_eq!(allowed, ["Active", "PassThrough"]);
    assert_eq!(get(parameter, "Default").and_then(text), Some("PassThrough"));
    for (id, function) in stack.functions() {
        let tracing = stack.function_property(function, "Tracing").and_then(reference);
        assert_eq!(tracing, Some("FunctionTracing"), "{id}");
    }
}
