//! What the bench's test binaries share: the database servers they run the
//! harness against, from `CONFLICTKIT_PG_URL` and `CONFLICTKIT_MYSQL_URL`.

/// Whether a missing server fails the test instead of leaving it out.
fn servers_required() -> bool {
    let set = |var: &str| {
        std::env::var(var)
            .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
    };
    std::env::var_os("CONFLICTKIT_REQUIRE_SERVERS").is_some() || set("CI")
}

/// The URL in `var`, `None` (with a printed reason) when the engine may be left out.
pub(crate) fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                !servers_required(),
                "{var} is not set but CONFLICTKIT_REQUIRE_SERVERS or CI is: the test command must start the server (./scripts/test.sh)"
            );
            eprintln!("leaving out {var}: not set (run ./scripts/test.sh to start the servers)");
            None
        }
    }
}
