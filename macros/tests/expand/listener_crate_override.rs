/// `crate = "…"` roots every generated path.
#[my::ck::event_listener("x", crate = "my::ck")]
fn f(d: u8) {
    let _ = d;
}
