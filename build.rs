//! Lets the Redis-backed tests run only where a Redis URL is given (`.ci/run` always gives
//! one); elsewhere libtest lists them as ignored, with the reason, instead of failing.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(redis_tests)");
    println!("cargo::rerun-if-env-changed=TOKENRELAY_TEST_REDIS_URL");
    if std::env::var_os("TOKENRELAY_TEST_REDIS_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=redis_tests");
    }
}
