#[cfg(target_env = "musl")]
mod thread_name;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(wilife_agent::cli::main(&args));
}
