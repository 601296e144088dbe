//! The relations the catalog lists, by name and oid, read from `pg_class` once the engine is
//! built (tables and views are registered at start; their oids are the catalog library's and
//! stay fixed for the process). `regclass_oid(name)` is a computed `name::regclass` (Metabase
//! writes `format('%I.%I', schema, table)::regclass::oid`): the relation's oid, or PostgreSQL's
//! error for one that does not exist. A literal `'pg_class'::regclass` is read the same way (the
//! library's own rule fails on `::regclass::oid`); a bound parameter's is the library's.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::common::{exec_err, Result as DfResult, ScalarValue};
use datafusion::logical_expr::TypeSignature;
use datafusion::prelude::SessionContext;

#[derive(Debug, Default)]
pub struct Relations {
    oids: HashMap<(String, String), i32>,
}

impl Relations {
    /// Reads every relation of `pg_class` with its schema's name.
    pub async fn read(ctx: &SessionContext) -> DfResult<Self> {
        let sql = "SELECT n.nspname, c.relname, CAST(c.oid AS INT) FROM pg_catalog.pg_class c \
                   JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid";
        let mut oids = HashMap::new();
        for batch in ctx.sql(sql).await?.collect().await? {
            let schema = datafusion::arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
            let name = datafusion::arrow::compute::cast(batch.column(1), &DataType::Utf8)?;
            let (schema, name) = (schema.as_string::<i32>(), name.as_string::<i32>());
            let oid = batch.column(2).as_primitive::<Int32Type>();
            for i in 0..batch.num_rows() {
                if schema.is_valid(i) && name.is_valid(i) && oid.is_valid(i) {
                    oids.insert((schema.value(i).to_string(), name.value(i).to_string()), oid.value(i));
                }
            }
        }
        Ok(Relations { oids })
    }

    /// The oid of `schema.name`.
    pub fn oid(&self, schema: &str, name: &str) -> Option<i32> {
        self.oids.get(&(schema.to_string(), name.to_string())).copied()
    }

    /// Whether the relation `oid` is what its bare name finds on the search path.
    pub fn is_visible(&self, oid: i32) -> bool {
        self.oids
            .iter()
            .any(|((_, name), o)| *o == oid && self.resolve(&format!("\"{}\"", name.replace('"', "\"\""))) == Some(oid))
    }

    /// The oid of a relation as `regclass` reads its name: `name` or `schema.name`, each part
    /// double-quoted as written or folded to lower case; an unqualified name is looked for in
    /// `pg_catalog`, then `public` (the search path).
    pub fn resolve(&self, text: &str) -> Option<i32> {
        match identifiers(text)?.as_slice() {
            [name] => self.oid("pg_catalog", name).or_else(|| self.oid("public", name)),
            [schema, name] => self.oid(schema, name),
            [_catalog, schema, name] => self.oid(schema, name),
            _ => None,
        }
    }
}

/// The parts of a dotted name: `"Quoted"` kept as written (`""` is a quote), others folded.
fn identifiers(text: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut chars = text.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.extend(c.to_lowercase());
                chars.next();
            }
        }
        if part.is_empty() {
            return None;
        }
        parts.push(part);
        match chars.next() {
            None => return Some(parts),
            Some('.') => continue,
            Some(_) => return None,
        }
    }
}

/// Registers `regclass_oid(text)` and `pg_table_is_visible(oid)`: whether the relation is the
/// one its bare name finds on the search path (`pg_catalog`, then `public`), as psql's `\d name`
/// asks (the catalog library's says true of every relation, so `\d events` listed
/// `warehouse.events` too).
pub fn register(ctx: &SessionContext, relations: Arc<Relations>) {
    let visible = relations.clone();
    let is_visible = move |args: &[ScalarValue]| {
        let oid = match args[0].cast_to(&DataType::Int64)? {
            ScalarValue::Int64(Some(oid)) => i32::try_from(oid).ok(),
            _ => None,
        };
        Ok(ScalarValue::Boolean(oid.map(|oid| visible.is_visible(oid))))
    };
    crate::catalog_functions::register(
        ctx,
        "pg_table_is_visible",
        TypeSignature::Any(1),
        DataType::Boolean,
        is_visible,
    );
    let body = move |args: &[ScalarValue]| {
        let name = match &args[0] {
            ScalarValue::Utf8(n) | ScalarValue::LargeUtf8(n) | ScalarValue::Utf8View(n) => n.as_deref(),
            ScalarValue::Null => None,
            other => return exec_err!("regclass: a relation's name is text, not {}", other.data_type()),
        };
        match name {
            None => Ok(ScalarValue::Int32(None)),
            Some(name) => match relations.resolve(name) {
                Some(oid) => Ok(ScalarValue::Int32(Some(oid))),
                None => exec_err!("relation \"{name}\" does not exist"),
            },
        }
    };
    crate::catalog_functions::register(ctx, "regclass_oid", TypeSignature::Any(1), DataType::Int32, body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_as_regclass_reads_them() {
        let relations = Relations {
            oids: HashMap::from([
                (("public".into(), "events".into()), 1),
                (("warehouse".into(), "events".into()), 2),
                (("pg_catalog".into(), "pg_class".into()), 3),
                (("public".into(), "Odd.Name".into()), 4),
            ]),
        };
        assert_eq!(relations.resolve("events"), Some(1));
        assert_eq!(relations.resolve("EVENTS"), Some(1));
        assert_eq!(relations.resolve("warehouse.events"), Some(2));
        assert_eq!(relations.resolve("\"warehouse\".\"events\""), Some(2));
        assert_eq!(relations.resolve("connaudit.warehouse.events"), Some(2));
        assert_eq!(relations.resolve("pg_class"), Some(3));
        assert_eq!(relations.resolve("public.\"Odd.Name\""), Some(4));
        assert_eq!(relations.resolve("\"Events\""), None);
        assert_eq!(relations.resolve("public."), None);
        assert_eq!(relations.resolve("\"unterminated"), None);
        assert!(relations.is_visible(1) && relations.is_visible(3) && relations.is_visible(4));
        assert!(!relations.is_visible(2), "warehouse.events is behind public.events");
    }
}
