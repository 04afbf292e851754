//! The actors-stream Lambda payload read straight from its DynamoDB JSON: each image's
//! attributes (`{"S":..}`, `{"N":"12"}`, `{"M":{..}}`, …) decode directly into an
//! [`ActorRecord`] whose state is a `serde_json::Value`, with no `AttributeValue` tree between.
//!
//! Decoding is lenient per record: a malformed image (unknown type tag, two tags in one value,
//! an `N` that is not a number, a missing or mistyped attribute) decodes to an error kept in
//! that record, which becomes a [`StreamItem`] with an [`Error::Corrupt`] change. Only JSON
//! that is not JSON at all, or an envelope that is not `{"Records":[{..},..]}`, fails the batch.
//!
//! Type mapping: `S` and `B` (base64, as is) → string; `N` → number (integers stay integers,
//! the rest become `f64`); `BOOL` → bool; `NULL` → null; `M` → object; `L` → array;
//! `SS`, `BS` → array of strings; `NS` → array of numbers.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};
use crate::ids::{ActorKey, Epoch, Version};
use crate::records::{ActorChange, ActorRecord};
use crate::service::StreamItem;

/// Visitor methods for the scalars a visitor does not expect: each is a non-fatal mismatch.
macro_rules! scalar_mismatches {
    ($what:expr) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<Self::Value, E> {
            Ok(Err($what.to_owned()))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<Self::Value, E> {
            Ok(Err($what.to_owned()))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Self::Value, E> {
            Ok(Err($what.to_owned()))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Self::Value, E> {
            Ok(Err($what.to_owned()))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Self::Value, E> {
            Ok(Err($what.to_owned()))
        }
    };
}

/// A batch of actors-stream records as the Lambda runtime hands it to the fan-out handler.
#[derive(Debug, Default, Deserialize)]
pub struct ActorStreamEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<ActorStreamRecord>,
}

/// One stream record: the event name and the change, images already decoded (or not).
#[derive(Debug, Default, Deserialize)]
pub struct ActorStreamRecord {
    /// `INSERT`, `MODIFY` or `REMOVE`; `None` when missing or not a string.
    #[serde(rename = "eventName", default, deserialize_with = "lenient_string")]
    pub event_name: Option<String>,
    #[serde(default)]
    pub dynamodb: ActorStreamChange,
}

/// The `dynamodb` part of a record. Other fields (`Keys`, `SizeBytes`, …) are skipped.
#[derive(Debug, Default, Deserialize)]
pub struct ActorStreamChange {
    #[serde(rename = "SequenceNumber", default, deserialize_with = "lenient_string")]
    pub sequence_number: Option<String>,
    #[serde(rename = "NewImage", default)]
    pub new_image: Option<ActorImage>,
    #[serde(rename = "OldImage", default)]
    pub old_image: Option<ActorImage>,
}

/// An image decoded into an actor record, or why it could not be.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorImage(pub std::result::Result<ActorRecord, String>);

impl ActorStreamRecord {
    /// The sequence number and the change this record decodes to.
    pub fn into_stream_item(self) -> StreamItem {
        let change = self.dynamodb;
        let sequence = change.sequence_number.unwrap_or_default();
        let image = |image: Option<ActorImage>, which: &str| -> Result<ActorRecord> {
            let decoded = image.map_or_else(|| Err("missing".to_owned()), |i| i.0);
            decoded.map_err(|e| Error::Corrupt {
                what: "actor stream record",
                detail: format!("{which} image: {e}"),
            })
        };
        let decoded = match self.event_name.as_deref() {
            Some("INSERT") => image(change.new_image, "new").map(|new| ActorChange::Created { new }),
            Some("MODIFY") => image(change.old_image, "old").and_then(|old| {
                Ok(ActorChange::Updated {
                    old,
                    new: image(change.new_image, "new")?,
                })
            }),
            Some("REMOVE") => image(change.old_image, "old").map(|old| ActorChange::Deleted { old }),
            other => Err(Error::Corrupt {
                what: "actor stream record",
                detail: format!("unknown eventName {other:?}"),
            }),
        };
        StreamItem {
            sequence,
            change: decoded,
        }
    }
}

impl ActorStreamEvent {
    /// The batch as the fan-out service takes it.
    pub fn into_stream_items(self) -> Vec<StreamItem> {
        self.records
            .into_iter()
            .map(ActorStreamRecord::into_stream_item)
            .collect()
    }
}

/// Local mode's event source mapping hands out `aws_lambda_events` events: each record goes
/// through its JSON form (cheap at local batch sizes). A record that does not convert becomes
/// one whose images carry the error.
impl From<aws_lambda_events::dynamodb::Event> for ActorStreamEvent {
    fn from(event: aws_lambda_events::dynamodb::Event) -> Self {
        let records = event
            .records
            .into_iter()
            .map(|record| {
                let converted = serde_json::to_value(&record).and_then(serde_json::from_value::<ActorStreamRecord>);
                converted.unwrap_or_else(|e| {
                    let broken = || Some(ActorImage(Err(format!("record does not convert: {e}"))));
                    ActorStreamRecord {
                        event_name: Some(record.event_name),
                        dynamodb: ActorStreamChange {
                            sequence_number: record.change.sequence_number,
                            new_image: broken(),
                            old_image: broken(),
                        },
                    }
                })
            })
            .collect();
        Self { records }
    }
}

/// A string, or `None` for anything else (never an error).
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    Ok(match d.deserialize_any(Expect::Tagged(Tag::S))? {
        Ok(Value::String(s)) => Some(s),
        _ => None,
    })
}

impl<'de> Deserialize<'de> for ActorImage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(ImageVisitor).map(ActorImage)
    }
}

/// The attribute names of an actor record.
enum Field {
    ActorKey,
    State,
    Version,
    Epoch,
    UpdatedAt,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attribute name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Field, E> {
                Ok(match v {
                    "actorKey" => Field::ActorKey,
                    "state" => Field::State,
                    "version" => Field::Version,
                    "epoch" => Field::Epoch,
                    "updatedAt" => Field::UpdatedAt,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_identifier(FieldVisitor)
    }
}

struct ImageVisitor;

impl<'de> Visitor<'de> for ImageVisitor {
    type Value = std::result::Result<ActorRecord, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a DynamoDB image")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        let mut error: Option<String> = None;
        let mut actor_key = None;
        let mut state = None;
        let mut version = None;
        let mut epoch = None;
        let mut updated_at = None;
        while let Some(field) = map.next_key::<Field>()? {
            let (name, value) = match field {
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                Field::ActorKey => ("actorKey", map.next_value_seed(Expect::Attr)?),
                Field::State => ("state", map.next_value_seed(Expect::Attr)?),
                Field::Version => ("version", map.next_value_seed(Expect::Attr)?),
                Field::Epoch => ("epoch", map.next_value_seed(Expect::Attr)?),
                Field::UpdatedAt => ("updatedAt", map.next_value_seed(Expect::Attr)?),
            };
            if error.is_some() {
                continue;
            }
            let decoded = value.and_then(|value| match field {
                Field::ActorKey => match value {
                    Value::String(s) => ActorKey::parse(&s)
                        .map(|k| actor_key = Some(k))
                        .map_err(|e| e.to_string()),
                    other => Err(format!("expected a string, got {}", kind(&other))),
                },
                Field::State => {
                    state = Some(value);
                    Ok(())
                }
                Field::Version => unsigned(&value).map(|v| version = Some(Version(v))),
                Field::Epoch => unsigned(&value).map(|v| epoch = Some(Epoch(v))),
                Field::UpdatedAt => value
                    .as_i64()
                    .map(|v| updated_at = Some(v))
                    .ok_or_else(|| format!("expected a 64-bit integer, got {value}")),
                Field::Other => Ok(()),
            });
            if let Err(e) = decoded {
                error = Some(format!("attribute {name}: {e}"));
            }
        }
        if let Some(e) = error {
            return Ok(Err(e));
        }
        let missing = |name: &str| format!("missing attribute {name}");
        Ok((|| {
            Ok(ActorRecord {
                actor_key: actor_key.ok_or_else(|| missing("actorKey"))?,
                state: state.ok_or_else(|| missing("state"))?,
                version: version.ok_or_else(|| missing("version"))?,
                epoch: epoch.ok_or_else(|| missing("epoch"))?,
                updated_at: updated_at.ok_or_else(|| missing("updatedAt"))?,
            })
        })())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> std::result::Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(Err("the image is an array, not a map".to_owned()))
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(Err("the image is null, not a map".to_owned()))
    }

    scalar_mismatches!("the image is not a map");
}

fn unsigned(value: &Value) -> std::result::Result<u64, String> {
    value
        .as_u64()
        .ok_or_else(|| format!("expected an unsigned 64-bit integer, got {value}"))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// A DynamoDB type tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    S,
    N,
    B,
    Bool,
    Null,
    M,
    L,
    Ss,
    Ns,
    Bs,
}

impl Tag {
    fn name(self) -> &'static str {
        match self {
            Tag::S => "S",
            Tag::N => "N",
            Tag::B => "B",
            Tag::Bool => "BOOL",
            Tag::Null => "NULL",
            Tag::M => "M",
            Tag::L => "L",
            Tag::Ss => "SS",
            Tag::Ns => "NS",
            Tag::Bs => "BS",
        }
    }
}

/// A type tag, or the unknown name.
struct TagKey(std::result::Result<Tag, String>);

impl<'de> Deserialize<'de> for TagKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct TagVisitor;
        impl Visitor<'_> for TagVisitor {
            type Value = TagKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a DynamoDB type tag")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<TagKey, E> {
                Ok(TagKey(match v {
                    "S" => Ok(Tag::S),
                    "N" => Ok(Tag::N),
                    "B" => Ok(Tag::B),
                    "BOOL" => Ok(Tag::Bool),
                    "NULL" => Ok(Tag::Null),
                    "M" => Ok(Tag::M),
                    "L" => Ok(Tag::L),
                    "SS" => Ok(Tag::Ss),
                    "NS" => Ok(Tag::Ns),
                    "BS" => Ok(Tag::Bs),
                    other => Err(other.to_owned()),
                }))
            }
        }
        d.deserialize_identifier(TagVisitor)
    }
}

/// What the next JSON value should be: a typed attribute value (`{"S":"x"}`), or the payload
/// of a tag (`"x"` after `"S"`). Produces the value or, without failing the parse, why not.
#[derive(Clone, Copy)]
enum Expect {
    Attr,
    Tagged(Tag),
}

type Decoded = std::result::Result<Value, String>;

impl<'de> DeserializeSeed<'de> for Expect {
    type Value = Decoded;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Decoded, D::Error> {
        d.deserialize_any(self)
    }
}

impl Expect {
    fn mismatch(self, got: &str) -> Decoded {
        Err(match self {
            Expect::Attr => format!("expected a typed value like {{\"S\": ..}}, got {got}"),
            Expect::Tagged(tag) => format!("{} holds {got}", tag.name()),
        })
    }
}

impl<'de> Visitor<'de> for Expect {
    type Value = Decoded;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a DynamoDB JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Decoded, E> {
        Ok(match self {
            Expect::Tagged(Tag::Bool) => Ok(Value::Bool(v)),
            Expect::Tagged(Tag::Null) if v => Ok(Value::Null),
            _ => self.mismatch(if v { "true" } else { "false" }),
        })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Decoded, E> {
        Ok(match self {
            Expect::Tagged(Tag::S | Tag::B) => Ok(Value::String(v.to_owned())),
            Expect::Tagged(Tag::N) => number(v),
            _ => self.mismatch("a string"),
        })
    }

    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Decoded, E> {
        match self {
            Expect::Tagged(Tag::S | Tag::B) => Ok(Ok(Value::String(v))),
            _ => self.visit_str(&v),
        }
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<Decoded, E> {
        Ok(self.mismatch("a JSON number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<Decoded, E> {
        Ok(self.mismatch("a JSON number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Decoded, E> {
        Ok(self.mismatch("a JSON number"))
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Decoded, E> {
        Ok(self.mismatch("null"))
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<Decoded, E> {
        Ok(self.mismatch("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Decoded, A::Error> {
        let element = match self {
            Expect::Tagged(Tag::L) => Expect::Attr,
            Expect::Tagged(Tag::Ss) => Expect::Tagged(Tag::S),
            Expect::Tagged(Tag::Ns) => Expect::Tagged(Tag::N),
            Expect::Tagged(Tag::Bs) => Expect::Tagged(Tag::B),
            _ => {
                drain_seq(seq)?;
                return Ok(self.mismatch("a list"));
            }
        };
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        let mut error = None;
        let mut index = 0usize;
        while let Some(item) = seq.next_element_seed(element)? {
            match item {
                Ok(v) if error.is_none() => items.push(v),
                Ok(_) => {}
                Err(e) => {
                    error.get_or_insert_with(|| format!("[{index}]: {e}"));
                }
            }
            index += 1;
        }
        Ok(error.map_or(Ok(Value::Array(items)), Err))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Decoded, A::Error> {
        match self {
            Expect::Attr => {
                let Some(TagKey(tag)) = map.next_key::<TagKey>()? else {
                    return Ok(Err("an attribute value without a type tag".to_owned()));
                };
                let value = match tag {
                    Ok(tag) => map.next_value_seed(Expect::Tagged(tag))?,
                    Err(unknown) => {
                        map.next_value::<IgnoredAny>()?;
                        Err(format!("unknown type tag {unknown:?}"))
                    }
                };
                if map.next_key::<IgnoredAny>()?.is_some() {
                    map.next_value::<IgnoredAny>()?;
                    drain_map(map)?;
                    return Ok(Err("an attribute value with more than one type tag".to_owned()));
                }
                Ok(value)
            }
            Expect::Tagged(Tag::M) => {
                let mut object = Map::new();
                let mut error = None;
                while let Some(key) = map.next_key::<String>()? {
                    match map.next_value_seed(Expect::Attr)? {
                        Ok(v) if error.is_none() => {
                            object.insert(key, v);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            error.get_or_insert_with(|| format!("{key}: {e}"));
                        }
                    }
                }
                Ok(error.map_or(Ok(Value::Object(object)), Err))
            }
            Expect::Tagged(_) => {
                drain_map(map)?;
                Ok(self.mismatch("a map"))
            }
        }
    }
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> std::result::Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> std::result::Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A DynamoDB number: an integer when it is one that fits 64 bits, an `f64` otherwise.
fn number(s: &str) -> Decoded {
    if let Ok(u) = s.parse::<u64>() {
        return Ok(Value::from(u));
    }
    if let Ok(i) = s.parse::<i64>() {
        return Ok(Value::from(i));
    }
    s.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| format!("N {s:?} is not a number"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Decodes one attribute value from its JSON text.
    fn attr(text: &str) -> Decoded {
        let mut d = serde_json::Deserializer::from_str(text);
        let decoded = Expect::Attr
            .deserialize(&mut d)
            .expect("valid JSON never fails the parse");
        d.end().expect("one value");
        decoded
    }

    fn ok(text: &str) -> Value {
        attr(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn err(text: &str) -> String {
        match attr(text) {
            Ok(v) => panic!("{text} decoded to {v}"),
            Err(e) => e,
        }
    }

    #[test]
    fn every_type_decodes_to_its_json_value() {
        assert_eq!(ok(r#"{"S":"héllo \"x\""}"#), json!("héllo \"x\""));
        assert_eq!(ok(r#"{"S":""}"#), json!(""));
        assert_eq!(ok(r#"{"BOOL":true}"#), json!(true));
        assert_eq!(ok(r#"{"BOOL":false}"#), json!(false));
        assert_eq!(ok(r#"{"NULL":true}"#), Value::Null);
        assert_eq!(ok(r#"{"B":"AAEC"}"#), json!("AAEC"));
        assert_eq!(ok(r#"{"SS":["a","b"]}"#), json!(["a", "b"]));
        assert_eq!(ok(r#"{"NS":["1","-2","2.5"]}"#), json!([1, -2, 2.5]));
        assert_eq!(ok(r#"{"BS":["AAEC","AQ=="]}"#), json!(["AAEC", "AQ=="]));
        assert_eq!(ok(r#"{"L":[]}"#), json!([]));
        assert_eq!(ok(r#"{"M":{}}"#), json!({}));
    }

    #[test]
    fn numbers_keep_integers_as_integers() {
        assert_eq!(ok(r#"{"N":"12"}"#), json!(12));
        assert!(ok(r#"{"N":"12"}"#).is_u64());
        assert_eq!(ok(r#"{"N":"0"}"#), json!(0));
        assert_eq!(ok(r#"{"N":"-7"}"#), json!(-7));
        assert!(ok(r#"{"N":"-7"}"#).is_i64());
        assert_eq!(ok(r#"{"N":"18446744073709551615"}"#), json!(u64::MAX));
        assert_eq!(ok(r#"{"N":"-9223372036854775808"}"#), json!(i64::MIN));
        assert_eq!(ok(r#"{"N":"3.25"}"#), json!(3.25));
        assert_eq!(ok(r#"{"N":"-0.5"}"#), json!(-0.5));
        assert_eq!(ok(r#"{"N":"1E+2"}"#), json!(100.0));
        // Beyond 64 bits: the nearest f64, as serde_dynamo did.
        let big = ok(r#"{"N":"123456789012345678901234567890"}"#);
        assert!(big.is_f64(), "{big}");
        assert_eq!(big.as_f64(), Some(1.2345678901234568e29));
    }

    #[test]
    fn nested_maps_and_lists_decode() {
        let value = ok(r#"{"M":{
            "items":{"M":{"1":{"M":{"title":{"S":"milk"},"done":{"BOOL":false},"tags":{"SS":["x"]}}}}},
            "order":{"L":[{"N":"1"},{"L":[{"NULL":true},{"M":{"deep":{"N":"-3"}}}]}]},
            "nextId":{"N":"1"}
        }}"#);
        assert_eq!(
            value,
            json!({
                "items": {"1": {"title": "milk", "done": false, "tags": ["x"]}},
                "order": [1, [null, {"deep": -3}]],
                "nextId": 1
            })
        );
    }

    #[test]
    fn malformed_values_are_errors_not_parse_failures() {
        assert!(err(r#"{"S":"a","N":"1"}"#).contains("more than one type tag"));
        assert!(err(r#"{"X":"a"}"#).contains("unknown type tag \"X\""));
        assert!(err(r#"{}"#).contains("without a type tag"));
        assert!(err(r#"{"N":"twelve"}"#).contains("N \"twelve\" is not a number"));
        assert!(err(r#"{"N":"NaN"}"#).contains("is not a number"));
        assert!(err(r#"{"N":12}"#).contains("N holds a JSON number"));
        assert!(err(r#"{"S":{"nested":[1,2]}}"#).contains("S holds a map"));
        assert!(err(r#"{"BOOL":"true"}"#).contains("BOOL holds a string"));
        assert!(err(r#"{"NULL":false}"#).contains("NULL holds false"));
        assert!(err(r#"{"L":{"a":1}}"#).contains("L holds a map"));
        assert!(err(r#"{"M":[1]}"#).contains("M holds a list"));
        assert!(err(r#""plain""#).contains("expected a typed value"));
        assert!(err(r#"[1,2]"#).contains("expected a typed value"));
        assert!(err(r#"{"NS":["1","x"]}"#).contains("[1]: N \"x\" is not a number"));
        let nested = err(r#"{"M":{"a":{"M":{"b":{"L":[{"S":"ok"},{"Q":1}]}}}}}"#);
        assert_eq!(nested, "a: b: [1]: unknown type tag \"Q\"");
    }

    fn image(state: &str, version: &str) -> String {
        format!(
            r#"{{"actorKey":{{"S":"acme/todo/groceries"}},"state":{state},"version":{version},
                "epoch":{{"N":"1795435210000"}},"updatedAt":{{"N":"1795435220000"}},"extra":{{"L":[{{"S":"x"}}]}}}}"#
        )
    }

    fn record(name: &str, sequence: u32, old: &str, new: &str) -> String {
        format!(
            r#"{{"eventID":"e{sequence}","eventName":"{name}","awsRegion":"us-east-1","eventSource":"aws:dynamodb",
                "dynamodb":{{"Keys":{{"actorKey":{{"S":"acme/todo/groceries"}}}},"OldImage":{old},"NewImage":{new},
                "SequenceNumber":"{sequence}","SizeBytes":10,"StreamViewType":"NEW_AND_OLD_IMAGES"}}}}"#
        )
    }

    fn decode(records: &[String]) -> Vec<StreamItem> {
        let payload = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let event: ActorStreamEvent = serde_json::from_str(&payload).expect("the batch decodes");
        event.into_stream_items()
    }

    fn corrupt_detail(item: &StreamItem) -> String {
        match &item.change {
            Err(Error::Corrupt { detail, .. }) => detail.clone(),
            other => panic!("expected a corrupt record, got {other:?}"),
        }
    }

    #[test]
    fn images_decode_into_actor_records() {
        let old = image(r#"{"M":{"n":{"N":"1"}}}"#, r#"{"N":"1"}"#);
        let new = image(r#"{"M":{"n":{"N":"2"}}}"#, r#"{"N":"2"}"#);
        let items = decode(&[
            record("MODIFY", 1, &old, &new),
            record("INSERT", 2, "{}", &new),
            record("REMOVE", 3, &old, "{}"),
        ]);
        let expected = |state: Value, version: u64, updated_at: i64| ActorRecord {
            actor_key: ActorKey::parse("acme/todo/groceries").expect("key"),
            state,
            version: Version(version),
            epoch: Epoch(1_795_435_210_000),
            updated_at,
        };
        let (old, new) = (
            expected(json!({"n": 1}), 1, 1_795_435_220_000),
            expected(json!({"n": 2}), 2, 1_795_435_220_000),
        );
        assert_eq!(items[0].sequence, "1");
        assert_eq!(
            items[0].change.as_ref().ok(),
            Some(&ActorChange::Updated {
                old: old.clone(),
                new: new.clone()
            })
        );
        assert_eq!(items[1].change.as_ref().ok(), Some(&ActorChange::Created { new }));
        assert_eq!(items[2].change.as_ref().ok(), Some(&ActorChange::Deleted { old }));
    }

    #[test]
    fn a_malformed_record_is_an_error_of_its_own_and_the_rest_decode() {
        let good = image(r#"{"M":{"n":{"N":"1"}}}"#, r#"{"N":"1"}"#);
        let items = decode(&[
            record("MODIFY", 1, &good, &image(r#"{"M":{"n":{"N":"x"}}}"#, r#"{"N":"2"}"#)),
            record("MODIFY", 2, &image(r#"{"S":"a","N":"1"}"#, r#"{"N":"1"}"#), &good),
            record("INSERT", 3, "{}", &image(r#"{"Z":"a"}"#, r#"{"N":"1"}"#)),
            record("INSERT", 4, "{}", &image(r#"{"M":{}}"#, r#"{"S":"one"}"#)),
            record("INSERT", 5, "{}", &image(r#"{"M":{}}"#, r#"{"N":"-1"}"#)),
            record("INSERT", 6, "{}", r#"{"actorKey":{"S":"no-slashes"},"state":{"M":{}}}"#),
            record("INSERT", 7, "{}", r#"{"actorKey":{"S":"acme/todo/x"}}"#),
            record("INSERT", 8, "{}", r#"[{"S":"x"}]"#),
            record("INSERT", 9, "{}", "null"),
            record("UPSERT", 10, &good, &good),
            record("INSERT", 11, "{}", &good),
        ]);
        assert_eq!(items.len(), 11);
        let details: Vec<String> = items[..10].iter().map(corrupt_detail).collect();
        assert_eq!(details[0], "new image: attribute state: n: N \"x\" is not a number");
        assert_eq!(
            details[1],
            "old image: attribute state: an attribute value with more than one type tag"
        );
        assert_eq!(details[2], "new image: attribute state: unknown type tag \"Z\"");
        assert!(
            details[3].starts_with("new image: attribute version: expected an unsigned"),
            "{}",
            details[3]
        );
        assert!(
            details[4].starts_with("new image: attribute version: expected an unsigned"),
            "{}",
            details[4]
        );
        assert!(
            details[5].starts_with("new image: attribute actorKey: "),
            "{}",
            details[5]
        );
        assert_eq!(details[6], "new image: missing attribute state");
        assert_eq!(details[7], "new image: the image is an array, not a map");
        assert_eq!(details[8], "new image: missing", "null is no image");
        assert_eq!(details[9], "unknown eventName Some(\"UPSERT\")");
        assert_eq!(items[3].sequence, "4");
        assert!(items[10].change.is_ok(), "{:?}", items[10].change);
    }

    #[test]
    fn missing_images_and_envelope_fields_are_record_errors() {
        let payload = r#"{"Records":[
            {"eventName":"MODIFY","dynamodb":{"SequenceNumber":"1"}},
            {"eventName":5,"dynamodb":{"SequenceNumber":["x"]}},
            {}
        ]}"#;
        let event: ActorStreamEvent = serde_json::from_str(payload).expect("the batch decodes");
        let items = event.into_stream_items();
        assert_eq!(corrupt_detail(&items[0]), "old image: missing");
        assert_eq!(items[1].sequence, "");
        assert_eq!(corrupt_detail(&items[1]), "unknown eventName None");
        assert_eq!(corrupt_detail(&items[2]), "unknown eventName None");
    }

    #[test]
    fn json_that_is_not_json_fails_the_batch() {
        assert!(serde_json::from_str::<ActorStreamEvent>(r#"{"Records":[{"dynamodb":{"NewImage":{"a":}}}]}"#).is_err());
    }

    /// Local mode's conversion from `aws_lambda_events` goes through the same JSON.
    #[test]
    fn aws_lambda_events_batches_convert() {
        let old = image(
            r#"{"M":{"n":{"N":"1"},"l":{"L":[{"BOOL":true},{"NULL":true}]}}}"#,
            r#"{"N":"1"}"#,
        );
        let new = image(r#"{"M":{"n":{"N":"2.5"},"s":{"SS":["a"]}}}"#, r#"{"N":"2"}"#);
        let payload = format!(r#"{{"Records":[{}]}}"#, record("MODIFY", 1, &old, &new));
        let event: aws_lambda_events::dynamodb::Event = serde_json::from_str(&payload).expect("event");
        let items = ActorStreamEvent::from(event).into_stream_items();
        match &items[0].change {
            Ok(ActorChange::Updated { old, new }) => {
                assert_eq!(old.state, json!({"n": 1, "l": [true, null]}));
                assert_eq!(new.state, json!({"n": 2.5, "s": ["a"]}));
                assert_eq!(new.version, Version(2));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(items[0].sequence, "1");
    }
}
