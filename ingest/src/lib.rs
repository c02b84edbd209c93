//! jiancha's edge for incoming data: decoding and validating events (SPEC §3) and reading
//! reference directories (SPEC §4). Kafka consumption joins this crate in cluster mode.
//!
//! Everything here turns outside bytes into the `rules` crate's types, or into a precise reason
//! why it cannot.

pub mod decode;
pub mod reference_dir;
pub mod replay;

pub use decode::{decode, decode_str, DecodeError, DecodeOptions, Reason, Receipt};
