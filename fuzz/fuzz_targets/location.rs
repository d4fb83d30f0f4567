//! Store locations: parsing never panics, and a parsed bucket location prints as a URL that
//! parses back to the same location.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tftrail_store::Location;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Location::parse(text) {
        Ok(loc @ Location::Object { .. }) => {
            let printed = loc.to_string();
            let again = Location::parse(&printed)
                .unwrap_or_else(|e| panic!("{text:?} prints as {printed:?}, which fails: {e}"));
            assert_eq!(again, loc, "{text:?} prints as {printed:?}");
        }
        Ok(_) => {}
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
