//! String maps with bounded keys and values, as named schemas (utoipa would name a
//! `BTreeMap` field's schema `BTreeMap`). The limits are the ones the service checks:
//! `shipments::check_texts` (metadata) and `connections::validate` (credentials,
//! settings). Schema-only types: requests and answers hold plain maps.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Type};

macro_rules! string_map_schema {
    ($name:ident, $doc:literal, $keys:expr, $key_len:expr, $value:expr) => {
        #[doc = $doc]
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .description(Some($doc))
                    .max_properties(Some($keys))
                    .property_names(Some(
                        ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some($key_len)),
                    ))
                    .additional_properties(Some($value))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

string_map_schema!(
    Metadata,
    "Your own string pairs, kept and returned as given: at most 50 keys of 1-40 characters, values of at most 500 characters.",
    50,
    40,
    ObjectBuilder::new().schema_type(Type::String).max_length(Some(500))
);
string_map_schema!(
    Credentials,
    "One of the carrier's credential sets (`GET /v1/carriers`), write-only: at most 20 fields, names of 1-64 characters, values of at most 4096 characters.",
    20,
    64,
    ObjectBuilder::new().schema_type(Type::String).max_length(Some(4096))
);
string_map_schema!(
    Settings,
    "The carrier's settings (`GET /v1/carriers`): at most 50 keys of 1-64 characters; each value at most 4096 characters once written as JSON.",
    50,
    64,
    // Any JSON value: each carrier's settings have their own shapes (`GET /v1/carriers`).
    ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
);
