//! Identifier newtypes: connections, tenants, actor keys, versions and epochs.
//!
//! An [`ActorKey`] always carries its tenant, so one tenant can never name another's actor.
//! Clients name actors relative to their own tenant (`todo/groceries`); [`ActorAddress`]
//! parses what a client sent and resolves it against the connection's tenant.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest tenant, actor type or actor id accepted, in bytes.
pub const MAX_PART_LEN: usize = 128;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} is longer than {max} bytes")]
    TooLong { what: &'static str, max: usize },
    #[error("{what} contains {found:?}; allowed are letters, digits and - _ . : @")]
    BadChar { what: &'static str, found: char },
    #[error("actor must look like `type/id` (or `tenant/type/id` for your own tenant), got {parts} part(s)")]
    Shape { parts: usize },
}

fn check_part(what: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { what });
    }
    if s.len() > MAX_PART_LEN {
        return Err(IdError::TooLong {
            what,
            max: MAX_PART_LEN,
        });
    }
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@')))
    {
        Some(found) => Err(IdError::BadChar { what, found }),
        None => Ok(()),
    }
}

/// Checks a workflow instance id a client chose or names (`workflowId`) before it reaches a
/// key: 1 to 128 bytes of letters, digits and `- _ . : @`.
pub fn check_workflow_id(id: &str) -> Result<(), IdError> {
    check_part("`workflowId`", id)
}

/// The id API Gateway assigns to a WebSocket connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionId(String);

impl ConnectionId {
    pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
        let id = id.into();
        if id.is_empty() {
            return Err(IdError::Empty { what: "connection id" });
        }
        if id.len() > 256 {
            return Err(IdError::TooLong {
                what: "connection id",
                max: 256,
            });
        }
        Ok(Self(id))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The tenant a connection belongs to; set once at `$connect` from the authorizer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
        let id = id.into();
        check_part("tenant", &id)?;
        Ok(Self(id))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TenantId::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Tenant + actor type + actor id; stored as `tenant/type/id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorKey {
    tenant: TenantId,
    actor_type: String,
    id: String,
}

impl ActorKey {
    pub fn new(tenant: TenantId, actor_type: &str, id: &str) -> Result<Self, IdError> {
        check_part("actor type", actor_type)?;
        check_part("actor id", id)?;
        Ok(Self {
            tenant,
            actor_type: actor_type.to_owned(),
            id: id.to_owned(),
        })
    }

    /// Parses the stored form `tenant/type/id`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [tenant, actor_type, id] => Self::new(TenantId::new(*tenant)?, actor_type, id),
            _ => Err(IdError::Shape { parts: parts.len() }),
        }
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    pub fn actor_type(&self) -> &str {
        &self.actor_type
    }
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The name a client of this tenant uses: `type/id`.
    pub fn address(&self) -> String {
        format!("{}/{}", self.actor_type, self.id)
    }
}

impl fmt::Display for ActorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.tenant, self.actor_type, self.id)
    }
}

impl Serialize for ActorKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ActorKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ActorKey::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// An actor as a client names it: `type/id`, or `tenant/type/id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorAddress {
    tenant: Option<TenantId>,
    actor_type: String,
    id: String,
}

/// A client named an actor of a tenant other than its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("actor belongs to tenant {named}, not to this connection's tenant")]
pub struct CrossTenant {
    pub named: TenantId,
}

impl ActorAddress {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let parts: Vec<&str> = s.split('/').collect();
        let (tenant, actor_type, id) = match parts.as_slice() {
            [actor_type, id] => (None, *actor_type, *id),
            [tenant, actor_type, id] => (Some(TenantId::new(*tenant)?), *actor_type, *id),
            _ => return Err(IdError::Shape { parts: parts.len() }),
        };
        check_part("actor type", actor_type)?;
        check_part("actor id", id)?;
        Ok(Self {
            tenant,
            actor_type: actor_type.to_owned(),
            id: id.to_owned(),
        })
    }

    /// The actor type it names.
    pub fn actor_type(&self) -> &str {
        &self.actor_type
    }

    /// The full key within `tenant`; refuses an address that names another tenant.
    pub fn resolve(self, tenant: &TenantId) -> Result<ActorKey, CrossTenant> {
        match self.tenant {
            Some(named) if &named != tenant => Err(CrossTenant { named }),
            _ => Ok(ActorKey {
                tenant: tenant.clone(),
                actor_type: self.actor_type,
                id: self.id,
            }),
        }
    }
}

/// Per-actor version: 0 means "never written"; every write adds exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(pub u64);

impl Version {
    pub const NONE: Version = Version(0);
    pub fn next(self) -> Version {
        Version(self.0 + 1)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Changes when an actor's history is lost (it was deleted and created again), so a
/// client can tell "catch up" from "start over". 0 for an actor that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Epoch(pub u64);

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(s: &str) -> TenantId {
        TenantId::new(s).expect("valid tenant")
    }

    #[test]
    fn actor_key_round_trips_through_its_stored_form() {
        let key = ActorKey::new(tenant("acme"), "todo", "groceries").expect("valid");
        assert_eq!(key.to_string(), "acme/todo/groceries");
        assert_eq!(ActorKey::parse("acme/todo/groceries"), Ok(key.clone()));
        assert_eq!(key.address(), "todo/groceries");
    }

    #[test]
    fn actor_key_parsing_rejects_empty_parts_injection_and_long_keys() {
        assert_eq!(ActorKey::parse("acme//x"), Err(IdError::Empty { what: "actor type" }));
        assert_eq!(ActorKey::parse("acme/todo/a/b"), Err(IdError::Shape { parts: 4 }));
        assert!(matches!(
            ActorKey::parse("acme/to do/x"),
            Err(IdError::BadChar { found: ' ', .. })
        ));
        assert!(matches!(ActorKey::parse("acme/todo/é"), Err(IdError::BadChar { .. })));
        let long = "x".repeat(MAX_PART_LEN + 1);
        assert!(matches!(
            ActorKey::parse(&format!("acme/todo/{long}")),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn address_resolves_only_within_the_connection_tenant() {
        let acme = tenant("acme");
        let own = ActorAddress::parse("acme/todo/x").expect("valid").resolve(&acme);
        assert_eq!(own.expect("same tenant").to_string(), "acme/todo/x");
        let relative = ActorAddress::parse("counter/c1").expect("valid").resolve(&acme);
        assert_eq!(relative.expect("relative").to_string(), "acme/counter/c1");
        let other = ActorAddress::parse("globex/todo/x").expect("valid").resolve(&acme);
        assert_eq!(
            other,
            Err(CrossTenant {
                named: tenant("globex")
            })
        );
        assert_eq!(ActorAddress::parse("todo"), Err(IdError::Shape { parts: 1 }));
    }
}
