//! The identity a verified token carries: its tenant claim and `sub`.

use serde_json::{Map, Value};
use statecast::ids::TenantId;

use crate::error::AuthError;

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub tenant: TenantId,
    pub sub: String,
}

/// Reads `sub` and the tenant claim (named `tenant_claim`) of verified claims.
pub(crate) fn identity(claims: &Map<String, Value>, tenant_claim: &str) -> Result<Identity, AuthError> {
    let sub = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
        _ => return Err(AuthError::MissingSubject),
    };
    let invalid = |source| AuthError::InvalidTenant {
        claim: tenant_claim.to_owned(),
        source,
    };
    let tenant = match claims.get(tenant_claim) {
        None | Some(Value::Null) => {
            return Err(AuthError::MissingTenant {
                claim: tenant_claim.to_owned(),
            })
        }
        Some(Value::String(tenant)) => TenantId::new(tenant.as_str()).map_err(|e| invalid(Some(e)))?,
        Some(_) => return Err(invalid(None)),
    };
    Ok(Identity { tenant, sub })
}
