//! TEMPORARY (the local OIDC issuer for tests lands with the authentication work).
