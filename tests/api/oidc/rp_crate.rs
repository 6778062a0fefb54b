//! The `openidconnect` crate as a relying party (placeholder until written).
