//! PostgreSQL functions BI tools call at connect time that the catalog of `datafusion-postgres`
//! leaves out: `version()` (in PostgreSQL's shape, which pgjdbc, Metabase and DBeaver parse) and
//! `current_setting(name [, missing_ok])` with the server's settings.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarUDF, Signature, TypeSignature, Volatility};
use datafusion::logical_expr::{ScalarFunctionArgs, ScalarUDFImpl};
use datafusion::prelude::SessionContext;

/// What `server_version` says: the PostgreSQL release whose protocol and catalog we follow.
pub const SERVER_VERSION: &str = "16.6";

/// The settings `current_setting` knows; a session's own `SET` values are kept by the
/// connection and shown by `SHOW`.
const SETTINGS: &[(&str, &str)] = &[
    ("server_version", SERVER_VERSION),
    ("server_version_num", "160006"),
    ("server_encoding", "UTF8"),
    ("client_encoding", "UTF8"),
    ("search_path", "public"),
    ("timezone", "UTC"),
    ("datestyle", "ISO, MDY"),
    ("intervalstyle", "postgres"),
    ("integer_datetimes", "on"),
    ("standard_conforming_strings", "on"),
    ("default_transaction_read_only", "on"),
    ("transaction_read_only", "on"),
    ("transaction_isolation", "read committed"),
    ("max_identifier_length", "63"),
    ("max_index_keys", "32"),
    ("statement_timeout", "0"),
    ("lc_collate", "C"),
    ("lc_ctype", "C"),
    ("is_superuser", "off"),
];

pub fn register(ctx: &SessionContext) {
    let version = format!(
        "PostgreSQL {SERVER_VERSION} (connaudit {} serve, Apache DataFusion {}) on {}-{}",
        env!("CARGO_PKG_VERSION"),
        datafusion::DATAFUSION_VERSION,
        std::env::consts::ARCH,
        std::env::consts::OS
    );
    ctx.register_udf(create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(version.clone()))))),
    ));
    ctx.register_udf(ScalarUDF::new_from_impl(CurrentSetting::new()));
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CurrentSetting {
    signature: Signature,
}

impl CurrentSetting {
    fn new() -> Self {
        let signature = Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Utf8]),
                TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
            ],
            Volatility::Stable,
        );
        CurrentSetting { signature }
    }
}

fn setting(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    SETTINGS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

impl ScalarUDFImpl for CurrentSetting {
    fn name(&self) -> &str {
        "current_setting"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let missing_ok = match args.args.get(1) {
            Some(ColumnarValue::Scalar(ScalarValue::Boolean(Some(b)))) => *b,
            _ => false,
        };
        let lookup = |name: Option<&str>| -> DfResult<Option<&'static str>> {
            match name {
                None => Ok(None),
                Some(n) => match setting(n) {
                    Some(v) => Ok(Some(v)),
                    None if missing_ok => Ok(None),
                    None => exec_err!("unrecognized configuration parameter \"{n}\""),
                },
            }
        };
        match &args.args[0] {
            ColumnarValue::Scalar(s) => {
                let name = match s {
                    ScalarValue::Utf8(n) | ScalarValue::LargeUtf8(n) | ScalarValue::Utf8View(n) => n.as_deref(),
                    _ => None,
                };
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(lookup(name)?.map(str::to_string))))
            }
            ColumnarValue::Array(a) => {
                let names = a.as_any().downcast_ref::<StringArray>();
                let Some(names) = names else { return exec_err!("current_setting takes a text argument") };
                let values = (0..names.len())
                    .map(|i| lookup(names.is_valid(i).then(|| names.value(i))))
                    .collect::<DfResult<StringArray>>()?;
                Ok(ColumnarValue::Array(Arc::new(values) as ArrayRef))
            }
        }
    }
}
