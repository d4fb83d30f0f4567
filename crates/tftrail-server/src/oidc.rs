//! TEMPORARY (replaced by the OIDC verifier when it lands).
#![allow(missing_docs)]
/// An issuer.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct OidcConfig {}
