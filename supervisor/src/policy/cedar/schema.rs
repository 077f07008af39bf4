//! The schema every policy file is validated against, shipped as
//! `profiles/cordon.cedarschema` and built into the binary (so a policy
//! is always checked against the schema this cordon builds requests
//! for), parsed once.

use std::str::FromStr;
use std::sync::OnceLock;

use cedar_policy::{Entities, EntityId, EntityTypeName, EntityUid, Schema};

/// The schema's text, as shipped.
pub const SCHEMA: &str = include_str!("../../../../profiles/cordon.cedarschema");

/// The parsed schema, its action entities, and the entity types requests
/// are built of.
pub struct Parsed {
    pub schema: Schema,
    pub actions: Entities,
    pub types: Types,
}

/// The entity types of the schema, parsed once.
pub struct Types {
    pub profile: EntityTypeName,
    pub session: EntityTypeName,
    pub tool: EntityTypeName,
    pub mcp_server: EntityTypeName,
    pub mcp_tool: EntityTypeName,
    pub host: EntityTypeName,
    pub secret: EntityTypeName,
    pub action: EntityTypeName,
}

impl Types {
    pub fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }
}

/// The schema; `Err` only if the shipped file itself is broken (a test
/// proves it is not).
pub fn parsed() -> Result<&'static Parsed, &'static str> {
    static PARSED: OnceLock<Result<Parsed, String>> = OnceLock::new();
    PARSED
        .get_or_init(|| {
            let (schema, _warnings) =
                Schema::from_cedarschema_str(SCHEMA).map_err(|e| e.to_string())?;
            let actions = schema.action_entities().map_err(|e| e.to_string())?;
            let ty = |name: &str| EntityTypeName::from_str(name).map_err(|e| e.to_string());
            let types = Types {
                profile: ty("Cordon::Profile")?,
                session: ty("Cordon::Session")?,
                tool: ty("Cordon::Tool")?,
                mcp_server: ty("Cordon::McpServer")?,
                mcp_tool: ty("Cordon::McpTool")?,
                host: ty("Cordon::Host")?,
                secret: ty("Cordon::Secret")?,
                action: ty("Cordon::Action")?,
            };
            Ok(Parsed {
                schema,
                actions,
                types,
            })
        })
        .as_ref()
        .map_err(String::as_str)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shipped_schema_parses() {
        let p = super::parsed();
        assert!(p.is_ok(), "{:?}", p.err());
        assert_eq!(p.map(|p| p.actions.len()).unwrap_or(0), 5);
    }
}
