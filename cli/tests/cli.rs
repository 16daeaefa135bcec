//! End-to-end tests of the `wasmpool` command: the built binary, run on the
//! demo task module, as a pipeline or a student would run it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const MODULE: &str = guest_tasks::WASM_PATH;

fn wasmpool() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmpool"));
    // Logging settings of whoever runs the tests must not change the output.
    command.env_remove("RUST_LOG");
    command
}

/// Runs `wasmpool args…` with `stdin` as its input.
fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    feed(wasmpool().args(args), stdin)
}

/// [`run_with_stdin`] with one more environment variable.
fn run_with_stdin_env(args: &[&str], stdin: &[u8], (key, value): (&str, &str)) -> Output {
    feed(wasmpool().args(args).env(key, value), stdin)
}

/// Runs `command` with `stdin` as its input.
fn feed(command: &mut Command, stdin: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the wasmpool binary starts");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let input = stdin.to_vec();
    // Write from another thread: the child's output pipe may fill first.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let output = child.wait_with_output().expect("wasmpool runs");
    writer.join().expect("the writer finishes");
    output
}

fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `n` lines of `divide` inputs `[i, 1]`, except line `bad` (from 1): `[7, 0]`.
fn divide_inputs(n: usize, bad: usize) -> String {
    let mut text = String::with_capacity(n * 10);
    for i in 0..n {
        if i + 1 == bad {
            text.push_str("[7, 0]\n");
        } else {
            text.push_str(&format!("[{i}, 1]\n"));
        }
    }
    text
}

fn write_input(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("in.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

/// Whether these tests run cross-built, under Wine or qemu (set by
/// `.ci/windows` and `.ci/aarch64`): there the pipelines are ten times
/// shorter (they check the platform, not the scale), and cargo, a program
/// of the build machine, is not started.
fn cross() -> bool {
    std::env::var_os("WASMPOOL_CROSS_TEST").is_some()
}

/// The pipeline's length, and its failing line in the middle.
fn pipeline() -> (usize, usize) {
    if cross() { (10_000, 5_001) } else { (100_000, 50_001) }
}

#[test]
fn a_pipeline_of_100000_lines_goes_on_past_a_failing_line() {
    let (lines_in, bad) = pipeline();
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), &divide_inputs(lines_in, bad));
    let output_path = dir.path().join("out.jsonl");
    let out = wasmpool()
        .args(["run", MODULE, "divide", "--on-error", "continue", "-i"])
        .arg(&input)
        .arg("-o")
        .arg(&output_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = std::fs::read_to_string(&output_path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), lines_in, "one output line per input line");
    for (i, line) in lines.iter().enumerate() {
        if i + 1 == bad {
            let error: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(error["error"]["line"], bad, "{line}");
            assert_eq!(error["error"]["input"], "[7, 0]");
            assert_eq!(error["error"]["kind"], "panic");
            assert!(error["error"]["message"].as_str().unwrap().contains("cannot divide 7 by zero"), "{line}");
        } else {
            assert_eq!(*line, i.to_string(), "line {}", i + 1);
        }
    }
    let summary = stderr(&out);
    assert!(summary.contains(&format!("{lines_in} lines, 1 failed")), "{summary}");
    assert!(summary.contains("workers busy: #0 "), "{summary}");
}

#[test]
fn a_pipeline_of_100000_lines_stops_at_a_failing_line() {
    let (lines_in, bad) = pipeline();
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), &divide_inputs(lines_in, bad));
    let out = wasmpool().args(["run", MODULE, "divide", "-i"]).arg(&input).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains(&format!("line {bad} failed")) && message.contains("cannot divide 7 by zero"),
        "{message}"
    );
    assert!(message.contains("(stopped at the first failure)"), "{message}");
    // In input order, everything before the failing line was written, and
    // nothing after it.
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), bad - 1);
    assert!(lines.iter().enumerate().all(|(i, line)| *line == i.to_string()));
}

#[test]
fn stdin_to_stdout_in_input_order() {
    let input: String = (0..100).map(|i| format!("{i}\n")).collect();
    let out = run_with_stdin(&["run", MODULE, "sqrt", "--quiet"], input.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let roots: Vec<f64> = stdout_lines(&out).iter().map(|l| l.parse().unwrap()).collect();
    assert_eq!(roots, (0..100).map(|i| f64::from(i).sqrt()).collect::<Vec<_>>());
    assert_eq!(stderr(&out), "", "--quiet prints nothing on success");
}

#[test]
fn a_closed_output_stops_the_run_quietly() {
    // `wasmpool run … | head -1`: the reader goes after one line.
    let mut child = wasmpool()
        .args(["run", MODULE, "sqrt"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..1_000_000 {
            if writeln!(stdin, "{i}").is_err() {
                break;
            }
        }
    });
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut first).unwrap();
    assert_eq!(first, "0.0\n");
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("error"), "{}", stderr(&out));
}

#[test]
fn the_output_cannot_be_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), "1\n2\n");
    let out = wasmpool().args(["run", MODULE, "sqrt", "-i"]).arg(&input).arg("-o").arg(&input).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is the input"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&input).unwrap(), "1\n2\n", "the input is untouched");
}

#[test]
fn unordered_results_carry_their_line_numbers() {
    let input = "[1, 2]\n\n[3, 4]\n[5, 6]\n";
    let out = run_with_stdin(&["run", MODULE, "add", "--unordered", "-w", "2"], input.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut results: Vec<(u64, i64)> = stdout_lines(&out)
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["line"].as_u64().unwrap(), v["result"].as_i64().unwrap())
        })
        .collect();
    results.sort();
    // The blank line 2 is skipped, but counts as a line.
    assert_eq!(results, vec![(1, 3), (3, 7), (4, 11)]);
}

#[test]
fn worker_processes_are_this_same_program() {
    let input = divide_inputs(2_000, 1_000);
    let out = run_with_stdin(
        &["run", MODULE, "divide", "--processes", "-w", "2", "--on-error", "continue"],
        input.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 2_000);
    assert!(lines[999].contains("cannot divide 7 by zero"), "{}", lines[999]);
    assert_eq!(lines[1_999], "1999");
}

#[test]
fn the_seed_makes_random_tasks_repeat_on_any_number_of_workers() {
    let input = "1000\n".repeat(40);
    let one = run_with_stdin(&["run", MODULE, "pi_hits_seeded", "--seed", "7", "-w", "1"], input.as_bytes());
    let two = run_with_stdin(&["run", MODULE, "pi_hits_seeded", "--seed", "7", "-w", "2"], input.as_bytes());
    let other = run_with_stdin(&["run", MODULE, "pi_hits_seeded", "--seed", "8", "-w", "2"], input.as_bytes());
    assert_eq!(one.status.code(), Some(0), "{}", stderr(&one));
    assert_eq!(one.stdout, two.stdout);
    assert_ne!(one.stdout, other.stdout);
    assert!(stderr(&one).contains("seed 7"), "{}", stderr(&one));
    // Every task of the map draws its own numbers.
    let hits = stdout_lines(&one);
    assert!(hits.iter().any(|h| *h != hits[0]), "{hits:?}");
}

#[test]
fn structs_and_results_cross_as_json() {
    // `apply_transfers(balances: Vec<i64>, transfers: Vec<(u32, u32, i64)>) -> Result<Vec<i64>, String>`
    let input = "[[10, 0], [[0, 1, 4]]]\n[[10, 0], [[0, 1, 40]]]\n";
    let out = run_with_stdin(&["run", MODULE, "apply_transfers", "--on-error", "continue"], input.as_bytes());
    let lines = stdout_lines(&out);
    assert_eq!(lines[0], "[6,4]");
    let error: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(error["error"]["kind"], "failed", "{}", lines[1]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn sandbox_limits_apply_to_each_line() {
    let input = "1000\n9223372036854775807\n";
    let out =
        run_with_stdin(&["run", MODULE, "spin", "--deadline", "300ms", "--on-error", "continue"], input.as_bytes());
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 2, "{}", stderr(&out));
    assert!(lines[0].parse::<u64>().is_ok(), "{}", lines[0]);
    let error: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(error["error"]["kind"], "limit", "{}", lines[1]);
    assert!(error["error"]["message"].as_str().unwrap().contains("deadline"), "{}", lines[1]);

    let out = run_with_stdin(&["run", MODULE, "allocate", "--max-memory", "16MiB", "--quiet"], b"67108864\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 1 failed"), "{}", stderr(&out));
}

#[test]
fn the_pools_settings_are_options_as_in_python() {
    // The initializer runs on every new instance; with a fresh state per
    // line each starts from the state it left, with one instance per worker
    // the counter carries over from line to line.
    let init = ["--initializer", "counter_set", "--initargs", "[10]", "-w", "1", "--quiet"];
    let fresh = run_with_stdin(&[&["run", MODULE, "counter_next"], &init[..]].concat(), b"null\nnull\nnull\n");
    assert_eq!(stdout_lines(&fresh), ["11", "11", "11"], "{}", stderr(&fresh));
    let kept = [&["run", MODULE, "counter_next", "--fresh-state", "false"], &init[..]].concat();
    let kept = run_with_stdin(&kept, b"null\nnull\nnull\n");
    assert_eq!(stdout_lines(&kept), ["11", "12", "13"], "{}", stderr(&kept));

    // A setting that cannot work is named as the option, before any line runs.
    let bad = run_with_stdin(&["run", MODULE, "sqrt", "--initargs", "[1]"], b"4\n");
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("--initializer"), "{}", stderr(&bad));
    let bad = run_with_stdin(&["run", MODULE, "sqrt", "--cache", "false", "--cache-dir", "/tmp"], b"4\n");
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("--cache-dir: a cache folder is given, but the cache is turned off"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn malformed_lines_and_wrong_argument_counts_are_named() {
    let input = "[1, 2]\n{not json\n[1, 2, 3]\n5\n";
    let out = run_with_stdin(&["run", MODULE, "add", "--on-error", "continue"], input.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    let lines = stdout_lines(&out);
    assert_eq!(lines[0], "3");
    let kinds: Vec<serde_json::Value> = lines[1..].iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(kinds[0]["error"]["line"], 2);
    assert!(kinds[0]["error"]["message"].as_str().unwrap().contains("not JSON"), "{}", lines[1]);
    assert!(kinds[1]["error"]["message"].as_str().unwrap().contains("takes 2 arguments, but the array has 3"));
    assert!(kinds[2]["error"]["message"].as_str().unwrap().contains("takes 2 arguments: pass a JSON array of them"));
    assert!(kinds.iter().all(|k| k["error"]["kind"] == "invalid_input"));

    // A value of the wrong type is found by the task's own decoder.
    let out = run_with_stdin(&["run", MODULE, "add", "--on-error", "continue"], b"[\"one\", 2]\n");
    let error: serde_json::Value = serde_json::from_str(&stdout_lines(&out)[0]).unwrap();
    assert_eq!(error["error"]["kind"], "bad_arguments");
    assert!(error["error"]["message"].as_str().unwrap().contains("invalid type"), "{error}");

    // Stopping at a malformed line says which one and why.
    let out = run_with_stdin(&["run", MODULE, "add"], b"[1, 2]\n[1,\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 2 failed: invalid JSON input: not JSON"), "{}", stderr(&out));
}

#[test]
fn what_cannot_run_exits_with_2_and_says_why() {
    let missing = run_with_stdin(&["run", "/no/such/module.wasm", "sqrt"], b"1\n");
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("cannot read task module /no/such/module.wasm"), "{}", stderr(&missing));

    let unknown = run_with_stdin(&["run", MODULE, "sqr"], b"1\n");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("no task `sqr`; did you mean `sqrt`? the module has:"), "{}", stderr(&unknown));

    let not_wasm = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_wasm.path(), "hello").unwrap();
    let invalid = run_with_stdin(&["run", not_wasm.path().to_str().unwrap(), "sqrt"], b"1\n");
    assert_eq!(invalid.status.code(), Some(2));
    assert!(stderr(&invalid).contains("invalid task module"), "{}", stderr(&invalid));

    let no_input = wasmpool().args(["run", MODULE, "sqrt", "-i", "/no/such/input.jsonl"]).output().unwrap();
    assert_eq!(no_input.status.code(), Some(2));
    assert!(stderr(&no_input).contains("cannot open input /no/such/input.jsonl"), "{}", stderr(&no_input));

    let too_big = run_with_stdin(&["run", MODULE, "sqrt", "--max-module-size", "1KiB"], b"1\n");
    assert_eq!(too_big.status.code(), Some(2));
    assert!(stderr(&too_big).contains("1024"), "the limit is named: {}", stderr(&too_big));

    // A line longer than the task's memory limit is refused before it is
    // read whole; what came before it is answered.
    let mut long = b"1\n".to_vec();
    long.extend(std::iter::repeat_n(b'7', 9 << 20));
    long.extend(b"\n4\n");
    let huge = run_with_stdin(&["run", MODULE, "sqrt", "--max-memory", "8MiB"], &long);
    assert_eq!(huge.status.code(), Some(2));
    assert!(stderr(&huge).contains("line 2 is longer than 8388608 bytes"), "{}", stderr(&huge));
    assert_eq!(stdout_lines(&huge), ["1.0"]);

    let usage = wasmpool().args(["run", MODULE]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
    assert!(stderr(&usage).contains("<TASK>"), "{}", stderr(&usage));
}

#[test]
fn list_shows_every_task_with_its_types() {
    let out = wasmpool().args(["list", MODULE]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("add(a: i64, b: i64) -> i64\n"), "{text}");
    assert!(text.contains("mandel_row(y: u32, width: u32, height: u32, max_iter: u32) -> Vec<u8>"), "{text}");

    let out = wasmpool().args(["list", MODULE, "--json"]).output().unwrap();
    let tasks: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let add = tasks.iter().find(|t| t["name"] == "add").expect("add is listed");
    assert_eq!(add["params"][1]["ty"], "i64");
    assert_eq!(add["result"], "i64");
    assert_eq!(add["json"], true);
}

#[test]
fn every_command_has_help_with_an_example() {
    for command in ["run", "list", "new"] {
        let out = wasmpool().args([command, "--help"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains("Examples:") && help.contains(&format!("wasmpool {command}")), "{help}");
    }
}

/// Whether cargo can be started from here: not when the tests run
/// cross-built, where the cargo that built them belongs to another platform.
fn cargo_runs() -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    !cross() && Command::new(cargo).arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn new_makes_a_crate_where_print_rand_uuid_and_clocks_behave() {
    if !cargo_runs() {
        eprintln!("skipped: cargo cannot run here (cross-built tests)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = wasmpool().current_dir(dir.path()).args(["new", "my_tasks"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("cargo build --release --target wasm32-wasip1"));
    let crate_dir = dir.path().join("my_tasks");

    // What a student adds: two crates of the registry, and tasks that
    // print, draw random numbers and read the clock.
    let manifest = crate_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "[profile.release]",
        "rand = \"0.9\"\nuuid = { version = \"1\", features = [\"v4\"] }\n\n[profile.release]",
    );
    std::fs::write(&manifest, text).unwrap();
    let mut lib = std::fs::OpenOptions::new().append(true).open(crate_dir.join("src/lib.rs")).unwrap();
    lib.write_all(STUDENT_TASKS.as_bytes()).unwrap();
    drop(lib);

    // The README's build command, in a target folder kept between runs.
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("new-crate-target");
    let module = build_crate(&crate_dir, &target_dir, "wasm32-wasip1");
    let module = module.to_str().unwrap();

    // The template's own tasks.
    let out = run_with_stdin(&["run", module, "square", "--quiet"], b"3\n1.5\n");
    assert_eq!(stdout_lines(&out), ["9.0", "2.25"], "{}", stderr(&out));
    let out = run_with_stdin(
        &["run", module, "summarise", "--on-error", "continue"],
        b"[\"Ada\", [7, 9, 8]]\n[\"Bob\", []]\n",
    );
    let lines = stdout_lines(&out);
    assert_eq!(lines[0], r#"{"name":"Ada","best":9,"mean":8.0}"#);
    assert!(lines[1].contains("Bob has no scores"), "{}", lines[1]);
    let listed = wasmpool().args(["list", module]).output().unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("summarise(name: String, scores: Vec<u32>)"));

    // Printed lines appear on stderr with their input's line; rand's
    // numbers repeat with the seed on 1 or 2 workers, threads or
    // processes, and change with another seed.
    let dice = |extra: &[&str]| {
        let out = run_with_stdin(&[&["run", module, "dice", "-q"], extra].concat(), b"5\n5\n5\n5\n");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        out
    };
    let one = dice(&["--seed", "5", "-w", "1"]);
    let throws = stdout_lines(&one);
    assert_eq!(throws.len(), 4);
    for (line, result) in throws.iter().enumerate() {
        let printed = format!("[line {}] threw 5 dice: {}", line + 1, result.replace(',', ", "));
        assert!(stderr(&one).contains(&printed), "{printed} not in:\n{}", stderr(&one));
    }
    assert_ne!(throws[0], throws[1], "two lines threw the same dice");
    assert_eq!(stdout_lines(&dice(&["--seed", "5", "-w", "2"])), throws);
    assert_eq!(stdout_lines(&dice(&["--seed", "5", "-w", "2", "--processes"])), throws);
    assert_ne!(stdout_lines(&dice(&["--seed", "6", "-w", "2"])), throws);

    // Or in the records, when asked.
    let records = stdout_lines(&dice(&["--seed", "5", "--printed", "records"]));
    let first: serde_json::Value = serde_json::from_str(&records[0]).unwrap();
    assert_eq!(first["result"].to_string(), throws[0]);
    assert_eq!(first["stdout"], format!("threw 5 dice: {}\n", throws[0].replace(',', ", ")));

    // uuid's v4 draws the task's stream too.
    let tickets = |workers: &str| {
        let out = run_with_stdin(&["run", module, "ticket", "-q", "--seed", "9", "-w", workers], b"\"Ada\"\n\"Bo\"\n");
        assert!(stderr(&out).contains("[line 2 stderr] ticket for Bo"), "{}", stderr(&out));
        stdout_lines(&out)
    };
    let issued = tickets("1");
    assert!(issued[0].starts_with("\"Ada-") && issued[0].len() == "\"Ada-\"".len() + 36, "{}", issued[0]);
    assert_eq!(issued[0].as_bytes()["\"Ada-".len() + 14], b'4', "a v4 UUID: {}", issued[0]);
    assert_eq!(tickets("2"), issued);

    // The clock is refused, naming the option that allows it, and allowed.
    let refused = run_with_stdin(&["run", module, "unix_time", "-q"], b"null\n");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("the wall clock") && stderr(&refused).contains("--allow-wall-clock"),
        "{}",
        stderr(&refused)
    );
    let allowed = run_with_stdin(&["run", module, "unix_time", "-q", "--allow-wall-clock"], b"null\n");
    assert!(stdout_lines(&allowed)[0].parse::<u64>().unwrap() > 1_700_000_000, "{}", stderr(&allowed));

    // A typo is answered with the closest name.
    let typo = run_with_stdin(&["run", module, "dise"], b"5\n");
    assert!(stderr(&typo).contains("did you mean `dice`?"), "{}", stderr(&typo));

    // The library runs the same module with the same results for the same seed.
    let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = printed.clone();
    let pool = wasmpool::Pool::builder()
        .module_file(module)
        .workers(2)
        .seed(5)
        .output_sink(wasmpool::OutputSink::call(move |_, index, output| {
            log.lock().unwrap().push((index, output.stdout_text()));
        }))
        .build()
        .unwrap();
    let from_library: Vec<Vec<u8>> =
        pool.task("dice").unwrap().map_each(vec![5u32; 4]).unwrap().into_iter().map(Result::unwrap).collect();
    let as_json: Vec<String> = from_library.iter().map(|t| serde_json::to_string(t).unwrap()).collect();
    assert_eq!(as_json, throws);
    let printed = printed.lock().unwrap();
    assert_eq!(printed.len(), 4);
    assert_eq!(printed[3], (3, format!("threw 5 dice: {:?}\n", from_library[3])));

    // Built for wasm32-unknown-unknown (the crate's .cargo/config.toml sets
    // getrandom's source; uuid wants to be told to use getrandom there),
    // rand and uuid draw the same numbers.
    let text = std::fs::read_to_string(&manifest).unwrap().replace("[\"v4\"]", "[\"v4\", \"rng-getrandom\"]");
    std::fs::write(&manifest, text).unwrap();
    let unknown = build_crate(&crate_dir, &target_dir, "wasm32-unknown-unknown");
    let out = run_with_stdin(&["run", unknown.to_str().unwrap(), "dice", "-q", "--seed", "5"], b"5\n5\n5\n5\n");
    assert_eq!(stdout_lines(&out), throws, "{}", stderr(&out));
    let out = run_with_stdin(&["run", unknown.to_str().unwrap(), "ticket", "-q", "--seed", "9"], b"\"Ada\"\n\"Bo\"\n");
    assert_eq!(stdout_lines(&out), issued, "{}", stderr(&out));
}

/// Builds the crate `my_tasks` in `crate_dir` as its README says, for
/// `target`, into `target_dir` (kept between runs); returns the module.
fn build_crate(crate_dir: &Path, target_dir: &Path, target: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = Command::new(cargo)
        .current_dir(crate_dir)
        .args(["build", "--release", "--target", target])
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .output()
        .unwrap();
    assert!(build.status.success(), "{}", stderr(&build));
    target_dir.join(target).join("release/my_tasks.wasm")
}

/// The tasks `new_makes_a_crate_where_print_rand_uuid_and_clocks_behave`
/// adds to a new crate, as a student would.
const STUDENT_TASKS: &str = r#"
/// Throws `n` dice with `rand`, and says what came up.
#[task]
pub fn dice(n: u32) -> Vec<u8> {
    use rand::Rng;
    let mut rng = rand::rng();
    let throws: Vec<u8> = (0..n).map(|_| rng.random_range(1..=6)).collect();
    println!("threw {n} dice: {throws:?}");
    throws
}

/// A ticket for `name` with a random (v4) UUID.
#[task]
pub fn ticket(name: String) -> String {
    eprintln!("ticket for {name}");
    format!("{name}-{}", uuid::Uuid::new_v4())
}

/// Seconds since 1970, by the wall clock.
#[task]
pub fn unix_time() -> u64 {
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
"#;

/// `wasmpool run MODULE random_walk` over `lines` lines into `output`, with
/// `extra` arguments.
fn walk(input: &Path, output: &Path, extra: &[&str]) -> Command {
    let mut command = wasmpool();
    command.args(["run", MODULE, "random_walk", "--seed", "7", "-q", "-i"]).arg(input).arg("-o").arg(output);
    command.args(extra);
    command
}

fn walk_inputs(n: usize) -> String {
    (0..n).map(|i| format!("{}\n", 10 + i % 50)).collect()
}

#[test]
fn a_killed_run_resumes_with_each_line_once_and_the_same_bytes() {
    let n = if cross() { 20_000 } else { 100_000 };
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), &walk_inputs(n));
    let whole = dir.path().join("whole.jsonl");
    let out = walk(&input, &whole, &[]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for unordered in [false, true] {
        let extra: &[&str] = if unordered { &["--unordered"] } else { &[] };
        let cut = dir.path().join(format!("cut-{unordered}.jsonl"));
        let mut child = walk(&input, &cut, extra).stderr(Stdio::null()).spawn().unwrap();
        // Killed once some results are out, but long before the end.
        let started = std::time::Instant::now();
        while std::fs::metadata(&cut).map_or(0, |m| m.len()) < 4096 && started.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let kept = std::fs::read(&cut).unwrap().iter().filter(|b| **b == b'\n').count();
        assert!(kept < n, "the run was killed before its end");
        // A torn last line, as a kill in the middle of a write leaves it.
        std::fs::OpenOptions::new().append(true).open(&cut).unwrap().write_all(b"[0.12").unwrap();
        let out = walk(&input, &cut, extra).arg("--resume").output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let mut resumed = std::fs::read_to_string(&cut).unwrap().lines().map(str::to_owned).collect::<Vec<_>>();
        let mut expected = std::fs::read_to_string(&whole).unwrap().lines().map(str::to_owned).collect::<Vec<_>>();
        if unordered {
            // The same records, each once, in another order: `{"line":N,"result":…}`.
            let numbered = |line: &String| -> (u64, String) {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                (value["line"].as_u64().unwrap(), value["result"].to_string())
            };
            let mut records: Vec<(u64, String)> = resumed.iter().map(numbered).collect();
            records.sort();
            resumed = records.into_iter().map(|(_, result)| result).collect();
            expected = expected
                .iter()
                .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap().to_string())
                .collect();
            assert_eq!(resumed, expected, "unordered: each line's result exactly once");
        } else {
            assert!(resumed == expected, "ordered: the resumed file is byte for byte the whole run's");
            assert_eq!(std::fs::read(&cut).unwrap(), std::fs::read(&whole).unwrap());
        }
        // Resuming a finished run runs nothing.
        let out = walk(&input, &cut, extra).args(["--resume"]).arg("-v").output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

#[test]
fn resume_refuses_a_journal_of_another_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path(), &walk_inputs(100));
    let output = dir.path().join("out.jsonl");
    assert!(walk(&input, &output, &[]).output().unwrap().status.success());
    let refused = |extra: &[&str]| {
        let mut command = wasmpool();
        command.args(["run", MODULE]).args(extra).arg("-i").arg(&input).arg("-o").arg(&output).arg("--resume");
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        stderr(&out)
    };
    assert!(refused(&["random_walk", "--seed", "8"]).contains("another seed (7"));
    assert!(refused(&["pi_hits_seeded", "--seed", "7"]).contains("another task"));
    assert!(refused(&["random_walk", "--seed", "7", "--unordered"]).contains("other settings"));
    assert!(refused(&["random_walk", "--max-memory", "32MiB"]).contains("other settings"));
    // Without --seed, the journal's seed is the run's.
    let out = wasmpool()
        .args(["run", MODULE, "random_walk", "-i"])
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .arg("--resume")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("seed 7"), "{}", stderr(&out));
    let missing = dir.path().join("never.jsonl");
    let out = walk(&input, &missing, &["--resume"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no journal"), "{}", stderr(&out));
}

#[cfg(not(feature = "mpi"))]
#[test]
fn under_mpirun_a_build_without_cluster_support_refuses() {
    let out = wasmpool()
        .args(["run", MODULE, "sqrt"])
        .env("OMPI_COMM_WORLD_SIZE", "4")
        .env("OMPI_COMM_WORLD_RANK", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("built without cluster support"), "{}", stderr(&out));
    // One rank alone is harmless.
    let out = run_with_stdin_env(&["run", MODULE, "sqrt"], b"4\n", ("OMPI_COMM_WORLD_SIZE", "1"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout_lines(&out), ["2.0"]);
    // An srun step of three tasks without an MPI plugin: refused before
    // anything is read, unless its tasks are independent jobs on purpose.
    let step = || {
        let mut command = wasmpool();
        command.args(["run", MODULE, "sqrt"]).env("SLURM_STEP_NUM_TASKS", "3").env("SLURM_PROCID", "1");
        command
    };
    let out = step().stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("SLURM_STEP_NUM_TASKS is set"), "{}", stderr(&out));
    let mut farm = step();
    farm.env("WASMPOOL_CLUSTER", "off").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = farm.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"9\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout_lines(&out), ["3.0"]);
}

#[test]
fn wasi_tasks_get_only_what_the_options_allow() {
    let module = guest_tasks::WASI_WASM_PATH;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("note.txt"), "from the host").unwrap();
    let dir_arg = format!("{}::data", dir.path().display());
    let env = |extra: &[&str]| {
        stdout_lines(&run_with_stdin(&[&["run", module, "env_var", "-q"], extra].concat(), b"\"GREETING\"\n"))
    };
    assert_eq!(env(&[]), ["null"]);
    assert_eq!(env(&["--allow-env", "GREETING=hi"]), ["\"hi\""]);
    let read = |extra: &[&str]| {
        let args = [&["run", module, "read_file", "-q", "--on-error", "continue"], extra].concat();
        stdout_lines(&run_with_stdin(&args, b"\"data/note.txt\"\n"))
    };
    assert!(read(&[])[0].contains("\"error\""), "{:?}", read(&[]));
    assert_eq!(read(&["--allow-dir", &dir_arg]), ["\"from the host\""]);
    // Read-only unless allowed to write.
    let write = |flag: &str| {
        let args = ["run", module, "write_file", "-q", "--on-error", "continue", flag, &dir_arg];
        stdout_lines(&run_with_stdin(&args, b"[\"data/out.txt\", \"42\"]\n"))
    };
    assert!(write("--allow-dir")[0].contains("\"error\""));
    assert!(!dir.path().join("out.txt").exists());
    assert_eq!(write("--allow-write-dir"), ["null"]);
    assert_eq!(std::fs::read_to_string(dir.path().join("out.txt")).unwrap(), "42");
    // Sleeping needs the monotonic clock; printed output can be dropped.
    let nap = run_with_stdin(&["run", module, "nap", "-q"], b"1\n");
    assert!(stderr(&nap).contains("--allow-monotonic-clock"), "{}", stderr(&nap));
    let nap = run_with_stdin(&["run", module, "nap", "-q", "--allow-monotonic-clock", "--printed", "discard"], b"1\n");
    assert_eq!(stdout_lines(&nap), ["1"]);
    assert!(!stderr(&nap).contains("slept"), "{}", stderr(&nap));
    let missing =
        run_with_stdin(&["run", module, "env_var", "--allow-env", "WASMPOOL_SURELY_UNSET_VARIABLE"], b"\"x\"\n");
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("WASMPOOL_SURELY_UNSET_VARIABLE is not set"), "{}", stderr(&missing));
}

#[test]
fn the_cache_is_shown_and_cleared() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path().to_str().expect("a UTF-8 temporary folder");
    let in_cache = |args: &[&str], stdin: &[u8]| run_with_stdin_env(args, stdin, ("XDG_CACHE_HOME", home));
    let empty = in_cache(&["cache"], b"");
    assert!(empty.status.success(), "{}", stderr(&empty));
    assert!(String::from_utf8_lossy(&empty.stdout).ends_with("0 entries, 0.0 MB in all\n"));
    // A run compiles the module into the cache.
    assert!(in_cache(&["run", MODULE, "sqrt"], b"4\n").status.success());
    let shown = String::from_utf8_lossy(&in_cache(&["cache"], b"").stdout).into_owned();
    assert!(shown.contains("  compiled  ") && shown.ends_with(" in all\n"), "{shown}");
    assert!(shown.contains("1 entries"), "{shown}");
    let cleared = String::from_utf8_lossy(&in_cache(&["cache", "--clear"], b"").stdout).into_owned();
    assert!(cleared.starts_with("removed 1 entries"), "{cleared}");
    assert!(String::from_utf8_lossy(&in_cache(&["cache"], b"").stdout).contains("0 entries"));
}
