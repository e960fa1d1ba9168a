//! Rate-limiting LLM tokens: each call acquires an estimate of its tokens, runs, and then
//! reconciles the tokens it really used, so an overestimate flows back to the calls behind.
//!
//! Run with `cargo run --example llm_tokens`.

use std::time::Duration;

use actix::Actor;
use actix_leaky_bucket::{BucketActor, BucketConfig, BucketHandle};
use actix_rt::time::{sleep, Instant};

/// A fake completion: what the model answered and how many tokens it used.
struct Completion {
    text: String,
    tokens_used: u32,
}

/// The usual estimate: prompt tokens (about 4 characters each) plus the answer's limit.
fn estimate_tokens(prompt: &str, max_answer_tokens: u32) -> f64 {
    (prompt.len() as f64 / 4.0).ceil() + f64::from(max_answer_tokens)
}

/// Stands in for an API call: takes a while, answers with fewer tokens than allowed.
async fn fake_llm_call(prompt: &str, answer_tokens: u32) -> Completion {
    sleep(Duration::from_millis(150)).await;
    let prompt_tokens = (prompt.len() as f64 / 4.0).ceil() as u32;
    Completion {
        text: format!("answer to {prompt:?}"),
        tokens_used: prompt_tokens + answer_tokens,
    }
}

#[actix_rt::main]
async fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    // 1000 tokens per second, with a burst of 1000.
    let config = BucketConfig::new(1000.0, Duration::from_secs(1)).expect("a valid config");
    let tokens = BucketHandle::from(BucketActor::new(config).start());
    let start = Instant::now();
    let stamp = move || format!("[{:>7.4}s]", start.elapsed().as_secs_f64());
    println!("a budget of 1000 tokens per second; each call estimates 400 + its prompt\n");

    let prompts = [
        ("summarise the meeting notes", 120),
        ("translate this paragraph into French", 310),
        ("write a haiku about rate limits", 40),
        ("explain leaky buckets to a five-year-old", 200),
        ("list ten prime numbers", 60),
        ("draft a polite reminder email", 180),
        ("suggest names for a pet tortoise", 90),
        ("rewrite this sentence more formally", 150),
        ("outline a talk on actor systems", 380),
        ("what rhymes with bucket", 30),
    ];
    let monitor = {
        let tokens = tokens.clone();
        actix_rt::spawn(async move {
            loop {
                sleep(Duration::from_millis(250)).await;
                let (Ok(capacity), Ok(stats)) = (tokens.capacity(0.0).await, tokens.stats().await)
                else {
                    break;
                };
                println!(
                    "{}   level {:>6.1}, {} waiting, {} granted so far",
                    stamp(),
                    capacity.level,
                    capacity.waiters,
                    stats.granted
                );
            }
        })
    };
    let calls: Vec<_> = prompts
        .into_iter()
        .map(|(prompt, answer_tokens)| {
            let tokens = tokens.clone();
            actix_rt::spawn(async move {
                let estimate = estimate_tokens(prompt, 400);
                let completion = tokens
                    .metered(estimate, fake_llm_call(prompt, answer_tokens), |done| {
                        f64::from(done.tokens_used)
                    })
                    .await
                    .expect("bucket running");
                let level = tokens.capacity(0.0).await.expect("bucket running").level;
                println!(
                    "{} {:<48} estimated {estimate:>4}, used {:>4}; level now {level:>6.1}",
                    stamp(),
                    completion.text,
                    completion.tokens_used,
                );
            })
        })
        .collect();
    for call in calls {
        call.await.expect("call finished");
    }
    monitor.abort();

    let stats = tokens.stats().await.expect("bucket running");
    println!(
        "\n{} {} calls granted, {} tokens acquired as estimates; mean wait {:?}, longest {:?}",
        stamp(),
        stats.granted,
        stats.granted_amount,
        stats.mean_wait(),
        stats.max_wait
    );
    tokens.shutdown_graceful().await.expect("bucket running");
}
