//! How the domain's enums are kept in text columns: written as their names and parsed
//! when read, once, here at the store's edge. A name the gateway does not know is a
//! decode error (the request fails and the log names the value), never a silent default.

use sqlx::Postgres;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueRef};

use crate::domain::{BookingState, Status};

macro_rules! text_enum {
    ($t:ty, $what:literal) => {
        impl sqlx::Type<Postgres> for $t {
            fn type_info() -> PgTypeInfo {
                <str as sqlx::Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <str as sqlx::Type<Postgres>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, Postgres> for $t {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let s = <&str as sqlx::Decode<Postgres>>::decode(value)?;
                <$t>::parse(s).ok_or_else(|| format!("unknown {} {s:?} in the database", $what).into())
            }
        }

        impl sqlx::Encode<'_, Postgres> for $t {
            fn encode_by_ref(
                &self,
                buf: &mut <Postgres as sqlx::Database>::ArgumentBuffer,
            ) -> Result<IsNull, BoxDynError> {
                <&str as sqlx::Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }
    };
}

text_enum!(Status, "shipment status");
text_enum!(BookingState, "booking state");
