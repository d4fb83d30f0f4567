//! TEMPORARY (replaced by the token file when it lands).
