//! The load-time rewrites against the WebAssembly spec test suite.
//!
//! Every module a pool loads is rewritten twice before it is compiled:
//! NaNs made canonical where their bits can be observed
//! (`host/runtime/canonical_nans/`), then its mutable globals exported and
//! its writes made to mark their pages, for resets in place
//! (`host/runtime/fresh_state/`). Property tests check both against random
//! programs; this test checks them against the official suite
//! (`tests/spec/`, a copy of WebAssembly/testsuite's core `.wast` files).
//!
//! For every module of every applicable file, the module as the pool
//! compiles it (`wasmpool::__internal::pool_code`: both rewrites through
//! the pool's own code) runs on an engine configured as a pool's
//! (`pool_engine`), and the module as written runs on a plain engine. Both
//! get the `spectest` imports and the instances `register`ed before them.
//! Every `assert_return`, `assert_trap`, `assert_exhaustion` and `invoke`
//! runs on both: the rewritten module must meet the assertion (NaN patterns
//! included) and agree with the plain one: the same values bit for bit, but
//! where the plain module gives a NaN, the rewritten one may give a
//! canonical NaN instead (the rewrite's purpose); the same trap; stack
//! exhaustion on both. `assert_invalid`, `assert_malformed`,
//! `assert_unlinkable` and the custom-section assertions are not about
//! running code and are not run. What is skipped is counted with its reason
//! and printed; every failure is listed, not just the first
//! (docs/architecture.md, "The rewrites against the spec suite").
//!
//! Its own test binary without libtest's harness: `main` first checks that
//! the comparison catches deliberately wrong rewrites, then runs the files
//! on every core and prints what it ran and skipped.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use wasmpool::__internal::{PoolCode, pool_code, pool_engine};
use wasmtime::{
    Config, Engine, Func, Global, GlobalType, Instance, Linker, Memory, MemoryType, Module, Mutability, Ref, RefType,
    Store, Table, TableType, Trap, Val, ValType,
};
use wast::core::{AbstractHeapType, HeapType, NanPattern, V128Pattern, WastArgCore, WastRetCore};
use wast::parser::{self, ParseBuffer};
use wast::token::{Id, Span};
use wast::{QuoteWat, Wast, WastArg, WastDirective, WastExecute, WastInvoke, WastRet, Wat};

/// The memory cap of the pool whose rewrites are checked: the largest
/// 32-bit memory, so that the mark map covers every page a spec module can
/// write whatever it grows to. (The map's size is the only part of the
/// rewrites that depends on the pool's settings; under a smaller cap the
/// pool's limiter refuses growth the plain engine allows.)
const MAX_MEMORY: usize = 4 << 30;

/// Native stack of the threads running scripts: room for the Wasm stack
/// (512 KiB, the pool's default and wasmtime's) and the host's frames in a
/// debug build.
const THREAD_STACK: usize = 16 << 20;

const GC: &str = "the GC proposal (structs, arrays, i31, casts, anyref and eqref): the pool's engine refuses GC types \
                  (wasmtime is built without its `gc` feature)";
const EXCEPTIONS: &str = "the exception-handling proposal (tags, throw, try_table, exnref): off in the pool's engine \
                          (wasmtime is built without its `gc` feature)";

/// Files of proposals the pool's engine refuses, skipped whole. Modules of
/// other files that the engine refuses (most often for an `externref`,
/// also a GC type here) are skipped one by one, with the engine's reason.
const SKIPPED_FILES: &[(&str, &str)] = &[
    ("array.wast", GC),
    ("array_copy.wast", GC),
    ("array_fill.wast", GC),
    ("array_init_data.wast", GC),
    ("array_init_elem.wast", GC),
    ("array_new_data.wast", GC),
    ("array_new_elem.wast", GC),
    ("br_on_cast.wast", GC),
    ("br_on_cast_fail.wast", GC),
    ("extern.wast", GC),
    ("i31.wast", GC),
    ("ref_cast.wast", GC),
    ("ref_eq.wast", GC),
    ("ref_test.wast", GC),
    ("struct.wast", GC),
    ("type-subtyping.wast", GC),
    ("tag.wast", EXCEPTIONS),
    ("throw.wast", EXCEPTIONS),
    ("throw_ref.wast", EXCEPTIONS),
    ("try_table.wast", EXCEPTIONS),
];

/// The files run in the emulated cross builds (`WASMPOOL_CROSS_TEST`:
/// .ci/windows, .ci/aarch64), where everything runs several times slower:
/// floats (where the CPU's NaNs differ) and memory writes (the marks).
const CROSS_FILES: &[&str] = &[
    "conversions.wast",
    "f32.wast",
    "f32_bitwise.wast",
    "f64.wast",
    "f64_bitwise.wast",
    "float_exprs.wast",
    "float_memory.wast",
    "float_misc.wast",
    "memory_copy.wast",
    "memory_fill.wast",
    "simd_store.wast",
    "store.wast",
];

const CROSS_SKIP: &str = "an emulated cross build (WASMPOOL_CROSS_TEST) runs only the float and memory-write files; \
                          the native build runs every file";

fn main() {
    if !selected() {
        return;
    }
    let engines = Engines::new();
    let mut failures = Vec::new();

    // First: the comparison must catch a rewrite that changes what a module does.
    let problems = on_big_stack(|| self_check(&engines));
    if !problems.is_empty() {
        failures.push("the comparison's self-check failed:".to_owned());
        failures.extend(problems);
    }

    let dir = suite_dir();
    let (jobs, skipped_files, mut problems) = plan(&dir);
    failures.append(&mut problems);
    let rewrite = |bytes: &[u8]| pool_code(bytes, MAX_MEMORY);
    let reports = run_files(&jobs, &engines, &rewrite);
    print_summary(&dir, &reports, &skipped_files);
    for report in &reports {
        failures.extend(report.failures.iter().cloned());
    }
    // The line libtest ends with, which .ci/run's summary counts.
    if failures.is_empty() {
        println!(
            "spec_suite: no differences\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out"
        );
        return;
    }
    println!("\nspec_suite: {} failures (each a difference unless it says otherwise):", failures.len());
    for failure in &failures {
        println!("{failure}");
    }
    println!("test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out");
    std::process::exit(1);
}

/// Whether libtest-style arguments select this test: `--list` lists it,
/// and a name filter that does not match its name skips it.
fn selected() -> bool {
    let mut args = std::env::args().skip(1);
    let mut filters = Vec::new();
    let mut exact = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--list" => {
                println!("spec_suite: test");
                return false;
            }
            "--exact" => exact = true,
            // Options that take a value.
            "--test-threads" | "--skip" | "--format" | "--color" | "--logfile" | "--shuffle-seed" | "-Z" => {
                args.next();
            }
            _ if arg.starts_with('-') => {}
            _ => filters.push(arg),
        }
    }
    let name = "spec_suite";
    let selects = |filter: &String| if exact { filter.as_str() == name } else { name.contains(filter.as_str()) };
    if filters.is_empty() || filters.iter().any(selects) {
        true
    } else {
        println!("test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out");
        false
    }
}

/// Where the suite is: `WASMPOOL_SPEC_SUITE`, or the copy in `tests/spec/`.
fn suite_dir() -> PathBuf {
    match std::env::var_os("WASMPOOL_SPEC_SUITE") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/spec"),
    }
}

/// Runs `f` on a thread with [`THREAD_STACK`] of stack.
fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("spec_suite".into())
            .stack_size(THREAD_STACK)
            .spawn_scoped(scope, f)
            .expect("a thread for the spec suite")
            .join()
            .expect("the spec suite's thread panicked")
    })
}

/// The two engines every script runs on.
struct Engines {
    /// A default configuration with the same proposals (the same wasmtime
    /// build; the GC proposal off, as in the pool's engines), running the
    /// modules as written.
    plain: Engine,
    /// A pool's, running the modules as the pool compiles them.
    pool: Engine,
}

impl Engines {
    fn new() -> Engines {
        let mut config = Config::new();
        // Relaxed SIMD's results are the engine's choice among those the
        // proposal allows: the pool's engines make them deterministic, and
        // so does this one, so that only the rewrites can make a difference.
        config.relaxed_simd_deterministic(true);
        // The pool's engines turn the GC proposal off (host/runtime/engine.rs).
        config.wasm_gc(false);
        let plain = Engine::new(&config).expect("the plain engine");
        let pool = pool_engine(MAX_MEMORY).expect("the pool's engine");
        Engines { plain, pool }
    }
}

/// How the module bytes the pool compiles are made from the bytes given.
type Rewrite<'a> = dyn Fn(&[u8]) -> Result<PoolCode, String> + Sync + 'a;

/// One file to run.
struct Job {
    name: String,
    path: PathBuf,
    size: u64,
}

/// The files to run (largest first, for balance), the files skipped with
/// the reason, and problems with the suite itself.
fn plan(dir: &Path) -> (Vec<Job>, Vec<(String, String)>, Vec<String>) {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let path = entry.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
                if name.ends_with(".wast") {
                    let size = entry.metadata().map_or(0, |m| m.len());
                    files.push(Job { name, path, size });
                }
            }
        }
        Err(e) => problems.push(format!("cannot read the spec suite in {}: {e}", dir.display())),
    }
    if files.is_empty() {
        problems.push(format!("no .wast file in {} (set WASMPOOL_SPEC_SUITE to the suite's folder)", dir.display()));
    }
    for &(name, _) in SKIPPED_FILES {
        if !files.iter().any(|job| job.name == name) {
            problems.push(format!("SKIPPED_FILES names {name}, which the suite does not have: remove it"));
        }
    }
    let cross = std::env::var_os("WASMPOOL_CROSS_TEST").is_some();
    let mut skipped = Vec::new();
    let mut jobs = Vec::new();
    for job in files {
        if let Some(&(_, reason)) = SKIPPED_FILES.iter().find(|entry| entry.0 == job.name) {
            skipped.push((job.name, reason.to_owned()));
        } else if cross && !CROSS_FILES.contains(&job.name.as_str()) {
            skipped.push((job.name, CROSS_SKIP.to_owned()));
        } else {
            jobs.push(job);
        }
    }
    skipped.sort();
    jobs.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.name.cmp(&b.name)));
    (jobs, skipped, problems)
}

/// Runs the files on every core; the reports in file order.
fn run_files(jobs: &[Job], engines: &Engines, rewrite: &Rewrite<'_>) -> Vec<FileReport> {
    let next = AtomicUsize::new(0);
    let reports = Mutex::new(Vec::with_capacity(jobs.len()));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, jobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            std::thread::Builder::new()
                .name("spec_suite".into())
                .stack_size(THREAD_STACK)
                .spawn_scoped(scope, || {
                    while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let report = run_job(job, engines, rewrite);
                        reports.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(report);
                    }
                })
                .expect("a thread for the spec suite");
        }
    });
    let mut reports = reports.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    reports.sort_by(|a, b| a.file.cmp(&b.file));
    reports
}

/// One file's report; a panic is a failure of that file.
fn run_job(job: &Job, engines: &Engines, rewrite: &Rewrite<'_>) -> FileReport {
    let text = match std::fs::read_to_string(&job.path) {
        Ok(text) => text,
        Err(e) => return FileReport::failed(&job.name, format!("{}: cannot read it: {e}", job.name)),
    };
    match catch_unwind(AssertUnwindSafe(|| run_script(&job.name, &text, engines, rewrite))) {
        Ok(report) => report,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            FileReport::failed(&job.name, format!("{}: the harness panicked: {message}", job.name))
        }
    }
}

/// What running one file did.
#[derive(Debug, Default)]
struct FileReport {
    file: String,
    /// Modules compiled on both engines.
    modules: usize,
    /// How the pool rewrote them (see [`rewrite_kind`]).
    rewrites: BTreeMap<String, usize>,
    /// Commands run on both and compared, by kind.
    run: BTreeMap<&'static str, usize>,
    /// Modules skipped, by reason.
    skipped_modules: BTreeMap<String, usize>,
    /// Commands skipped, by reason.
    skipped: BTreeMap<String, usize>,
    /// Directives this test does not run, by kind.
    out_of_scope: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
}

impl FileReport {
    fn failed(file: &str, failure: String) -> FileReport {
        FileReport { file: file.to_owned(), failures: vec![failure], ..FileReport::default() }
    }

    fn commands_run(&self) -> usize {
        self.run.values().sum()
    }

    fn commands_skipped(&self) -> usize {
        self.skipped.values().sum()
    }
}

/// Runs one script on both engines, `rewrite` making the pool's bytes.
fn run_script(name: &str, text: &str, engines: &Engines, rewrite: &Rewrite<'_>) -> FileReport {
    let unparsable = |mut e: wast::Error| {
        e.set_text(text);
        FileReport::failed(name, format!("{name}: wast cannot parse it: {e}"))
    };
    // The suite's names.wast names exports with bidirectional and
    // invisible characters on purpose.
    let mut lexer = wast::lexer::Lexer::new(text);
    lexer.allow_confusing_unicode(true);
    let buffer = match ParseBuffer::new_with_lexer(lexer) {
        Ok(buffer) => buffer,
        Err(e) => return unparsable(e),
    };
    // The directives borrow from the buffer.
    let parsed = parser::parse::<Wast<'_>>(&buffer);
    match parsed {
        Ok(wast) => run_directives(name, text, wast, engines, rewrite),
        Err(e) => unparsable(e),
    }
}

fn run_directives(name: &str, text: &str, wast: Wast<'_>, engines: &Engines, rewrite: &Rewrite<'_>) -> FileReport {
    let (plain, pool) = match (Side::new(&engines.plain), Side::new(&engines.pool)) {
        (Ok(plain), Ok(pool)) => (plain, pool),
        (Err(e), _) | (_, Err(e)) => {
            return FileReport::failed(name, format!("{name}: cannot set up the spectest imports: {e:#}"));
        }
    };
    let mut script = Script {
        name,
        text,
        rewrite,
        plain,
        pool,
        current: None,
        instances: HashMap::new(),
        definitions: HashMap::new(),
        last_definition: None,
        unavailable: HashMap::new(),
        report: FileReport { file: name.to_owned(), ..FileReport::default() },
    };
    for directive in wast.directives {
        script.run(directive);
    }
    script.report
}

/// A store and its linker, with the `spectest` module the spec's
/// interpreter defines (each script gets its own, shared by its modules).
struct Side {
    store: Store<()>,
    linker: Linker<()>,
}

impl Side {
    fn new(engine: &Engine) -> wasmtime::Result<Side> {
        const SPECTEST: &str = "spectest";
        let mut store = Store::new(engine, ());
        let mut linker = Linker::new(engine);
        // `register` may give a name to another instance later.
        linker.allow_shadowing(true);
        let prints = [
            ("print", Func::wrap(&mut store, || {})),
            ("print_i32", Func::wrap(&mut store, |_: i32| {})),
            ("print_i64", Func::wrap(&mut store, |_: i64| {})),
            ("print_f32", Func::wrap(&mut store, |_: f32| {})),
            ("print_f64", Func::wrap(&mut store, |_: f64| {})),
            ("print_i32_f32", Func::wrap(&mut store, |_: i32, _: f32| {})),
            ("print_f64_f64", Func::wrap(&mut store, |_: f64, _: f64| {})),
        ];
        for (name, func) in prints {
            linker.define(&store, SPECTEST, name, func)?;
        }
        let globals = [
            ("global_i32", ValType::I32, Val::I32(666)),
            ("global_i64", ValType::I64, Val::I64(666)),
            ("global_f32", ValType::F32, Val::F32(666.6f32.to_bits())),
            ("global_f64", ValType::F64, Val::F64(666.6f64.to_bits())),
        ];
        for (name, ty, value) in globals {
            let global = Global::new(&mut store, GlobalType::new(ty, Mutability::Const), value)?;
            linker.define(&store, SPECTEST, name, global)?;
        }
        let table = Table::new(&mut store, TableType::new(RefType::FUNCREF, 10, Some(20)), Ref::Func(None))?;
        linker.define(&store, SPECTEST, "table", table)?;
        let table64 = Table::new(&mut store, TableType::new64(RefType::FUNCREF, 10, Some(20)), Ref::Func(None))?;
        linker.define(&store, SPECTEST, "table64", table64)?;
        let memory = Memory::new(&mut store, MemoryType::new(1, Some(2)))?;
        linker.define(&store, SPECTEST, "memory", memory)?;
        Ok(Side { store, linker })
    }
}

/// A pair of one module compiled on both engines (plain, pool), or why it
/// is skipped.
type Modules = Result<(Module, Module), String>;
/// A pair of instances (plain, pool), or why commands on it are skipped.
type Instances = Result<(Instance, Instance), String>;

/// Instantiating a pair: (plain, pool).
type Instantiations = (wasmtime::Result<Instance>, wasmtime::Result<Instance>);

/// The skip reason of everything that depends on a module that failed
/// (the failure itself is listed).
const FAILED_MODULE: &str = "its module failed on one side (listed as a failure)";

/// A script running on both engines.
struct Script<'a> {
    name: &'a str,
    text: &'a str,
    rewrite: &'a Rewrite<'a>,
    plain: Side,
    pool: Side,
    /// The last module instantiated.
    current: Option<Instances>,
    /// Instances by the module's `$name`.
    instances: HashMap<String, Instances>,
    /// `(module definition $name …)`s.
    definitions: HashMap<String, Modules>,
    last_definition: Option<Modules>,
    /// Names `register`ed for a skipped instance, with why: modules
    /// importing from them are skipped too.
    unavailable: HashMap<String, String>,
    report: FileReport,
}

/// What a command gave on one side.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// It returned (a module: it was instantiated).
    Values(Vec<Value>),
    Trap(Trap),
    /// Any other failure: a link error, a wrong argument, …
    Error(String),
}

/// A value a command returned, in a form both stores' values compare in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    V128(u128),
    /// References of two stores can only be compared by being null or not.
    FuncRef {
        null: bool,
    },
    ExternRef {
        null: bool,
    },
    /// A reference of a kind the pool's engine cannot make (GC,
    /// exceptions, continuations).
    OtherRef,
}

/// What a command asserts.
#[derive(Clone, Copy)]
enum Expect<'e, 'a> {
    Return(&'e [WastRet<'a>]),
    /// Any trap (the plain module says which one the rewritten must give).
    Trap,
    Exhaustion,
    /// A bare `invoke`, or a module: no trap.
    Success,
}

impl Script<'_> {
    fn run(&mut self, directive: WastDirective<'_>) {
        let span = directive.span();
        match directive {
            WastDirective::Module(mut wat) => {
                let id = wat.name().map(|id| id.name().to_owned());
                let source = quote_source(&mut wat);
                let instances = self.compile(source, span).and_then(|modules| self.instantiate(&modules, span));
                if let Some(id) = id {
                    self.instances.insert(id, instances.clone());
                }
                self.current = Some(instances);
            }
            WastDirective::ModuleDefinition(mut wat) => {
                let id = wat.name().map(|id| id.name().to_owned());
                let source = quote_source(&mut wat);
                let modules = self.compile(source, span);
                if let Some(id) = id {
                    self.definitions.insert(id, modules.clone());
                }
                self.last_definition = Some(modules);
            }
            WastDirective::ModuleInstance { instance, module, .. } => {
                let modules = match module {
                    Some(id) => self.definitions.get(id.name()).cloned(),
                    None => self.last_definition.clone(),
                };
                let modules =
                    modules.unwrap_or_else(|| Err("it names a module definition this test did not see".into()));
                let instances = modules.and_then(|modules| self.instantiate(&modules, span));
                if let Some(id) = instance {
                    self.instances.insert(id.name().to_owned(), instances.clone());
                }
                self.current = Some(instances);
            }
            WastDirective::Register { name, module, .. } => self.register(name, module, span),
            WastDirective::Invoke(invoke) => {
                let outcomes = self.invoke(&invoke);
                self.check("invoke", span, outcomes, Expect::Success);
            }
            WastDirective::AssertReturn { exec, results, .. } => {
                let outcomes = self.execute(exec);
                self.check("assert_return", span, outcomes, Expect::Return(&results));
            }
            WastDirective::AssertTrap { exec, .. } => {
                let kind = if matches!(exec, WastExecute::Wat(_)) { "assert_trap (module)" } else { "assert_trap" };
                let outcomes = self.execute(exec);
                self.check(kind, span, outcomes, Expect::Trap);
            }
            WastDirective::AssertExhaustion { call, .. } => {
                let outcomes = self.invoke(&call);
                self.check("assert_exhaustion", span, outcomes, Expect::Exhaustion);
            }
            WastDirective::AssertMalformed { .. } => self.out_of_scope("assert_malformed"),
            WastDirective::AssertInvalid { .. } => self.out_of_scope("assert_invalid"),
            WastDirective::AssertInvalidCustom { .. } => self.out_of_scope("assert_invalid_custom"),
            WastDirective::AssertMalformedCustom { .. } => self.out_of_scope("assert_malformed_custom"),
            WastDirective::AssertUnlinkable { .. } => self.out_of_scope("assert_unlinkable"),
            WastDirective::AssertException { .. } => self.skip(EXCEPTIONS.to_owned()),
            WastDirective::AssertSuspension { .. } => {
                self.skip("the stack-switching proposal: off in the pool's engine".to_owned());
            }
            WastDirective::Thread(_) | WastDirective::Wait { .. } => {
                self.skip("the threads proposal: the pool's engine has no threads".to_owned());
            }
        }
    }

    fn out_of_scope(&mut self, kind: &'static str) {
        *self.report.out_of_scope.entry(kind).or_default() += 1;
    }

    fn skip(&mut self, reason: String) {
        *self.report.skipped.entry(reason).or_default() += 1;
    }

    /// Records a failure at `span`, with the line it is on.
    fn fail(&mut self, span: Span, what: impl Display) {
        let (line, column) = span.linecol_in(self.text);
        let source: String = self.text.lines().nth(line).unwrap_or_default().trim().chars().take(160).collect();
        self.report.failures.push(format!("{}:{}:{}: {what}\n        {source}", self.name, line + 1, column + 1));
    }

    /// Compiles a module on both engines: as written on the plain one, as
    /// the pool rewrites it on the pool's.
    fn compile(&mut self, source: Source, span: Span) -> Modules {
        let bytes = match source {
            Source::Bytes(bytes) => bytes,
            Source::Component => return Err(self.skip_module("a component, not a core module".into())),
            Source::Unencodable(e) => {
                self.fail(span, format!("harness: wast cannot encode this module: {e}"));
                return Err(FAILED_MODULE.into());
            }
        };
        let plain = match Module::new(self.plain.store.engine(), bytes.as_slice()) {
            Ok(module) => module,
            Err(e) => return Err(self.skip_module(refusal(&format!("{e:#}")))),
        };
        let code = match (self.rewrite)(bytes.as_slice()) {
            Ok(code) => code,
            Err(e) => {
                self.fail(span, format!("the pool refuses a module the plain engine compiles: {e}"));
                return Err(FAILED_MODULE.into());
            }
        };
        let pool = match Module::new(self.pool.store.engine(), code.code.as_slice()) {
            Ok(module) => module,
            Err(e) => {
                self.fail(span, format!("the module as the pool rewrites it does not compile: {e:#}"));
                return Err(FAILED_MODULE.into());
            }
        };
        self.report.modules += 1;
        *self.report.rewrites.entry(rewrite_kind(&code.reset)).or_default() += 1;
        Ok((plain, pool))
    }

    /// Counts a skipped module; the reason, for its commands.
    fn skip_module(&mut self, reason: String) -> String {
        *self.report.skipped_modules.entry(reason.clone()).or_default() += 1;
        reason
    }

    /// Instantiates a pair with the script's imports, expecting success.
    fn instantiate(&mut self, modules: &(Module, Module), span: Span) -> Instances {
        let (plain, pool) = self.instantiate_both(modules)?;
        match (plain, pool) {
            (Ok(plain), Ok(pool)) => Ok((plain, pool)),
            (plain, pool) => {
                let (plain, pool) = (instantiated(&plain), instantiated(&pool));
                let what = if matches!(plain, Outcome::Values(_)) {
                    "the module as the pool rewrites it does not instantiate"
                } else {
                    "harness: the plain module does not instantiate"
                };
                self.fail(span, format!("{what}: plain {}, rewritten {}", show(&plain), show(&pool)));
                Err(FAILED_MODULE.into())
            }
        }
    }

    /// Instantiates a pair, unless it imports from a skipped instance.
    fn instantiate_both(&mut self, (plain, pool): &(Module, Module)) -> Result<Instantiations, String> {
        for import in plain.imports() {
            if let Some(why) = self.unavailable.get(import.module()) {
                return Err(format!("it imports from an instance that was skipped: {why}"));
            }
        }
        let plain = self.plain.linker.instantiate(&mut self.plain.store, plain);
        let pool = self.pool.linker.instantiate(&mut self.pool.store, pool);
        Ok((plain, pool))
    }

    /// The instances a command names (`None`: the last module's).
    fn instances_of(&self, module: Option<Id<'_>>) -> Instances {
        match module {
            None => self.current.clone().unwrap_or_else(|| Err("no module before it".into())),
            Some(id) => self
                .instances
                .get(id.name())
                .cloned()
                .unwrap_or_else(|| Err("it names a module this test did not see".into())),
        }
    }

    fn register(&mut self, name: &str, module: Option<Id<'_>>, span: Span) {
        let (plain, pool) = match self.instances_of(module) {
            Ok(pair) => pair,
            Err(why) => {
                self.unavailable.insert(name.to_owned(), why);
                return;
            }
        };
        self.unavailable.remove(name);
        let plain = self.plain.linker.instance(&mut self.plain.store, name, plain).map(|_| ());
        let pool = self.pool.linker.instance(&mut self.pool.store, name, pool).map(|_| ());
        if let Err(e) = plain.and(pool) {
            self.fail(span, format!("harness: cannot register the instance: {e:#}"));
            self.unavailable.insert(name.to_owned(), FAILED_MODULE.into());
        }
    }

    /// Runs what an assertion asserts on both sides: the outcomes (plain,
    /// pool), or why it is skipped.
    fn execute(&mut self, exec: WastExecute<'_>) -> Result<(Outcome, Outcome), String> {
        match exec {
            WastExecute::Invoke(invoke) => self.invoke(&invoke),
            WastExecute::Get { module, global, .. } => {
                let (plain, pool) = self.instances_of(module)?;
                Ok((get(&mut self.plain.store, plain, global), get(&mut self.pool.store, pool, global)))
            }
            WastExecute::Wat(mut wat) => {
                let span = wat.span();
                let source = wat_source(&mut wat);
                let modules = self.compile(source, span)?;
                let (plain, pool) = self.instantiate_both(&modules)?;
                Ok((instantiated(&plain), instantiated(&pool)))
            }
        }
    }

    fn invoke(&mut self, invoke: &WastInvoke<'_>) -> Result<(Outcome, Outcome), String> {
        let (plain, pool) = self.instances_of(invoke.module)?;
        let args = invoke.args.iter().map(argument).collect::<Result<Vec<_>, _>>()?;
        let plain = call(&mut self.plain.store, plain, invoke.name, &args);
        let pool = call(&mut self.pool.store, pool, invoke.name, &args);
        Ok((plain, pool))
    }

    /// Checks a command's outcomes: the rewritten module meets the
    /// assertion and agrees with the plain one.
    fn check(
        &mut self,
        kind: &'static str,
        span: Span,
        outcomes: Result<(Outcome, Outcome), String>,
        expect: Expect<'_, '_>,
    ) {
        let (plain, pool) = match outcomes {
            Ok(outcomes) => outcomes,
            Err(why) => return self.skip(why),
        };
        *self.report.run.entry(kind).or_default() += 1;
        let pool_meets = meets(&pool, expect);
        let agrees = agree(&plain, &pool, expect);
        if pool_meets && agrees {
            return;
        }
        let mut what = Vec::new();
        if !pool_meets {
            what.push(if meets(&plain, expect) {
                "the rewritten module fails the assertion"
            } else {
                "both modules fail the assertion (harness or engine, not the rewrite)"
            });
        }
        if !agrees {
            what.push("the rewritten module differs from the plain one");
        }
        self.fail(span, format!("{kind}: {}: plain {}, rewritten {}", what.join("; "), show(&plain), show(&pool)));
    }
}

/// A module's bytes to compile, from the script.
enum Source {
    Bytes(Vec<u8>),
    Component,
    Unencodable(String),
}

fn quote_source(wat: &mut QuoteWat<'_>) -> Source {
    if matches!(wat, QuoteWat::QuoteComponent(..) | QuoteWat::Wat(Wat::Component(_))) {
        return Source::Component;
    }
    match wat.encode() {
        Ok(bytes) => Source::Bytes(bytes),
        Err(e) => Source::Unencodable(e.to_string()),
    }
}

fn wat_source(wat: &mut Wat<'_>) -> Source {
    if matches!(wat, Wat::Component(_)) {
        return Source::Component;
    }
    match wat.encode() {
        Ok(bytes) => Source::Bytes(bytes),
        Err(e) => Source::Unencodable(e.to_string()),
    }
}

/// Why the plain engine refuses a module, as a skip reason.
fn refusal(error: &str) -> String {
    let reason = if error.contains("gc types") || error.contains("gc feature") {
        "its module uses GC types (externref, anyref, …), which the pool's engine refuses (wasmtime is built without \
         its `gc` feature)"
    } else if error.contains("global.get of locally defined global")
        || error.contains("`gc` proposal")
        || error.contains("GC proposal")
    {
        "its module uses the GC proposal's constant expressions or type subtyping, off in the pool's engine \
         (host/runtime/engine.rs: `wasm_gc(false)`)"
    } else if error.contains("exception") {
        "its module uses exception handling, off in the pool's engine (wasmtime is built without its `gc` feature)"
    } else if error.contains("threads") || error.contains("shared") {
        "its module uses the threads proposal (shared memory, atomics), off in the pool's engine (wasmtime is built \
         without its `threads` feature)"
    } else {
        // The engine's words, without the offset that makes each unique.
        let message = error.split(" (at offset").next().unwrap_or(error);
        return format!("the plain engine refuses its module: {message}");
    };
    reason.to_owned()
}

/// How the pool prepared a module for resets, for the summary.
fn rewrite_kind(reset: &Result<bool, String>) -> String {
    match reset {
        Ok(true) => "canonical NaNs, then write marks and exported globals (reset from the marks)".to_owned(),
        Ok(false) => "canonical NaNs, then exported globals only (reset from the page scan)".to_owned(),
        Err(why) => format!("canonical NaNs only (no reset in place: {why})"),
    }
}

fn argument(arg: &WastArg<'_>) -> Result<Val, String> {
    let WastArg::Core(arg) = arg else { return Err("a component-model argument".into()) };
    match arg {
        WastArgCore::I32(x) => Ok(Val::I32(*x)),
        WastArgCore::I64(x) => Ok(Val::I64(*x)),
        WastArgCore::F32(x) => Ok(Val::F32(x.bits)),
        WastArgCore::F64(x) => Ok(Val::F64(x.bits)),
        WastArgCore::V128(x) => Ok(Val::V128(u128::from_le_bytes(x.to_le_bytes()).into())),
        WastArgCore::RefNull(
            HeapType::Abstract { ty: AbstractHeapType::Func | AbstractHeapType::NoFunc, .. } | HeapType::Concrete(_),
        ) => Ok(Val::FuncRef(None)),
        _ => Err("an argument of a reference type the pool's engine lacks (externref and GC references)".into()),
    }
}

fn value(val: &Val) -> Value {
    match val {
        Val::I32(x) => Value::I32(*x),
        Val::I64(x) => Value::I64(*x),
        Val::F32(bits) => Value::F32(*bits),
        Val::F64(bits) => Value::F64(*bits),
        Val::V128(x) => Value::V128(x.as_u128()),
        Val::FuncRef(f) => Value::FuncRef { null: f.is_none() },
        Val::ExternRef(r) => Value::ExternRef { null: r.is_none() },
        Val::AnyRef(_) | Val::ExnRef(_) | Val::ContRef(_) => Value::OtherRef,
    }
}

/// The outcome of a failed call or instantiation.
fn failure(error: &wasmtime::Error) -> Outcome {
    match error.downcast_ref::<Trap>() {
        Some(trap) => Outcome::Trap(*trap),
        None => Outcome::Error(format!("{error:#}")),
    }
}

fn instantiated(result: &wasmtime::Result<Instance>) -> Outcome {
    match result {
        Ok(_) => Outcome::Values(Vec::new()),
        Err(e) => failure(e),
    }
}

fn call(store: &mut Store<()>, instance: Instance, name: &str, args: &[Val]) -> Outcome {
    let Some(func) = instance.get_func(&mut *store, name) else {
        return Outcome::Error(format!("no function exported as {name:?}"));
    };
    let mut results = vec![Val::I32(0); func.ty(&*store).results().len()];
    match func.call(&mut *store, args, &mut results) {
        Ok(()) => Outcome::Values(results.iter().map(value).collect()),
        Err(e) => failure(&e),
    }
}

fn get(store: &mut Store<()>, instance: Instance, name: &str) -> Outcome {
    match instance.get_global(&mut *store, name) {
        Some(global) => Outcome::Values(vec![value(&global.get(&mut *store))]),
        None => Outcome::Error(format!("no global exported as {name:?}")),
    }
}

/// Whether an outcome meets what the command asserts.
fn meets(outcome: &Outcome, expect: Expect<'_, '_>) -> bool {
    match (outcome, expect) {
        (Outcome::Values(values), Expect::Return(expected)) => {
            values.len() == expected.len() && values.iter().zip(expected).all(|(v, e)| matches_ret(v, e))
        }
        (Outcome::Values(_), Expect::Success) | (Outcome::Trap(_), Expect::Trap) => true,
        (Outcome::Trap(trap), Expect::Exhaustion) => *trap == Trap::StackOverflow,
        _ => false,
    }
}

fn matches_ret(value: &Value, expected: &WastRet<'_>) -> bool {
    let WastRet::Core(expected) = expected else { return false };
    matches_core(value, expected)
}

fn matches_core(value: &Value, expected: &WastRetCore<'_>) -> bool {
    match (value, expected) {
        (_, WastRetCore::Either(options)) => options.iter().any(|option| matches_core(value, option)),
        (Value::I32(a), WastRetCore::I32(b)) => a == b,
        (Value::I64(a), WastRetCore::I64(b)) => a == b,
        (Value::F32(bits), WastRetCore::F32(pattern)) => f32_matches(*bits, pattern),
        (Value::F64(bits), WastRetCore::F64(pattern)) => f64_matches(*bits, pattern),
        (Value::V128(bits), WastRetCore::V128(pattern)) => v128_matches(*bits, pattern),
        (Value::FuncRef { null } | Value::ExternRef { null }, WastRetCore::RefNull(_)) => *null,
        (Value::FuncRef { null }, WastRetCore::RefFunc(_)) => !*null,
        (Value::ExternRef { null }, WastRetCore::RefExtern(_)) => !*null,
        _ => false,
    }
}

fn f32_matches(bits: u32, pattern: &NanPattern<wast::token::F32>) -> bool {
    match pattern {
        NanPattern::CanonicalNan => f32_canonical(bits),
        // All ones in the exponent and the payload's top bit (quiet).
        NanPattern::ArithmeticNan => bits & 0x7fc0_0000 == 0x7fc0_0000,
        NanPattern::Value(expected) => bits == expected.bits,
    }
}

fn f64_matches(bits: u64, pattern: &NanPattern<wast::token::F64>) -> bool {
    match pattern {
        NanPattern::CanonicalNan => f64_canonical(bits),
        NanPattern::ArithmeticNan => bits & 0x7ff8_0000_0000_0000 == 0x7ff8_0000_0000_0000,
        NanPattern::Value(expected) => bits == expected.bits,
    }
}

/// A canonical NaN of either sign: quiet, no other payload bit.
fn f32_canonical(bits: u32) -> bool {
    bits & 0x7fff_ffff == 0x7fc0_0000
}

fn f64_canonical(bits: u64) -> bool {
    bits & 0x7fff_ffff_ffff_ffff == 0x7ff8_0000_0000_0000
}

fn f32_nan(bits: u32) -> bool {
    f32::from_bits(bits).is_nan()
}

fn f64_nan(bits: u64) -> bool {
    f64::from_bits(bits).is_nan()
}

/// Lane `i` of `bits`, `width` bits wide, as the low bits of a `u64`.
fn lane(bits: u128, width: u32, i: usize) -> u64 {
    let mask = if width == 64 { u64::MAX } else { (1u64 << width) - 1 };
    (bits >> (width as usize * i)) as u64 & mask
}

fn v128_matches(bits: u128, pattern: &V128Pattern) -> bool {
    match pattern {
        V128Pattern::I8x16(lanes) => lanes.iter().enumerate().all(|(i, &x)| lane(bits, 8, i) == u64::from(x as u8)),
        V128Pattern::I16x8(lanes) => lanes.iter().enumerate().all(|(i, &x)| lane(bits, 16, i) == u64::from(x as u16)),
        V128Pattern::I32x4(lanes) => lanes.iter().enumerate().all(|(i, &x)| lane(bits, 32, i) == u64::from(x as u32)),
        V128Pattern::I64x2(lanes) => lanes.iter().enumerate().all(|(i, &x)| lane(bits, 64, i) == x as u64),
        V128Pattern::F32x4(lanes) => lanes.iter().enumerate().all(|(i, p)| f32_matches(lane(bits, 32, i) as u32, p)),
        V128Pattern::F64x2(lanes) => lanes.iter().enumerate().all(|(i, p)| f64_matches(lane(bits, 64, i), p)),
    }
}

/// Whether the rewritten module's outcome agrees with the plain one's.
fn agree(plain: &Outcome, pool: &Outcome, expect: Expect<'_, '_>) -> bool {
    match (plain, pool) {
        (Outcome::Values(plain), Outcome::Values(pool)) => {
            plain.len() == pool.len()
                && plain.iter().zip(pool).enumerate().all(|(i, (p, r))| {
                    let lanes = match expect {
                        Expect::Return(expected) => expected.get(i).map_or(Shape::Unknown, shape),
                        _ => Shape::Unknown,
                    };
                    values_agree(p, r, lanes)
                })
        }
        (Outcome::Trap(plain), Outcome::Trap(pool)) => plain == pool,
        // Neither ran (a link or argument error): the assertion says more.
        (Outcome::Error(_), Outcome::Error(_)) => true,
        _ => false,
    }
}

/// How a v128 is read, from the assertion's pattern.
#[derive(Clone, Copy)]
enum Shape {
    Integers,
    F32x4,
    F64x2,
    Unknown,
}

fn shape(expected: &WastRet<'_>) -> Shape {
    match expected {
        WastRet::Core(WastRetCore::V128(V128Pattern::F32x4(_))) => Shape::F32x4,
        WastRet::Core(WastRetCore::V128(V128Pattern::F64x2(_))) => Shape::F64x2,
        WastRet::Core(WastRetCore::V128(_)) => Shape::Integers,
        _ => Shape::Unknown,
    }
}

/// The same value, except that where the plain module has a NaN the
/// rewritten one may have a canonical NaN (of either sign: the negation of
/// a canonical NaN is one too).
fn values_agree(plain: &Value, pool: &Value, shape: Shape) -> bool {
    match (plain, pool) {
        (Value::F32(p), Value::F32(r)) => f32_agrees(*p, *r),
        (Value::F64(p), Value::F64(r)) => f64_agrees(*p, *r),
        (Value::V128(p), Value::V128(r)) => {
            let f32x4 = || (0..4).all(|i| f32_agrees(lane(*p, 32, i) as u32, lane(*r, 32, i) as u32));
            let f64x2 = || (0..2).all(|i| f64_agrees(lane(*p, 64, i), lane(*r, 64, i)));
            p == r
                || match shape {
                    Shape::Integers => false,
                    Shape::F32x4 => f32x4(),
                    Shape::F64x2 => f64x2(),
                    Shape::Unknown => f32x4() || f64x2(),
                }
        }
        (p, r) => p == r,
    }
}

fn f32_agrees(plain: u32, pool: u32) -> bool {
    plain == pool || (f32_nan(plain) && f32_canonical(pool))
}

fn f64_agrees(plain: u64, pool: u64) -> bool {
    plain == pool || (f64_nan(plain) && f64_canonical(pool))
}

fn show(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Values(values) => format!("[{}]", values.iter().map(show_value).collect::<Vec<_>>().join(", ")),
        Outcome::Trap(trap) => format!("trap ({trap})"),
        Outcome::Error(e) => format!("error ({e})"),
    }
}

fn show_value(value: &Value) -> String {
    match value {
        Value::I32(x) => format!("i32 {x} ({:#010x})", *x as u32),
        Value::I64(x) => format!("i64 {x} ({:#018x})", *x as u64),
        Value::F32(bits) => format!("f32 {} ({bits:#010x})", f32::from_bits(*bits)),
        Value::F64(bits) => format!("f64 {} ({bits:#018x})", f64::from_bits(*bits)),
        Value::V128(bits) => format!("v128 {bits:#034x}"),
        Value::FuncRef { null: true } => "null funcref".to_owned(),
        Value::FuncRef { null: false } => "funcref".to_owned(),
        Value::ExternRef { null: true } => "null externref".to_owned(),
        Value::ExternRef { null: false } => "externref".to_owned(),
        Value::OtherRef => "a GC or exception reference".to_owned(),
    }
}

fn print_summary(dir: &Path, reports: &[FileReport], skipped_files: &[(String, String)]) {
    println!("spec_suite: the load-time rewrites against the spec suite in {}", dir.display());
    let (file, modules, commands, skipped, failures) = ("file", "modules", "commands", "skipped", "failures");
    println!("{file:<40} {modules:>7} {commands:>8} {skipped:>8} {failures:>8}");
    for r in reports {
        println!(
            "{:<40} {:>7} {:>8} {:>8} {:>8}",
            r.file,
            r.modules,
            r.commands_run(),
            r.commands_skipped(),
            r.failures.len()
        );
    }
    let mut rewrites = BTreeMap::<&str, usize>::new();
    let mut run = BTreeMap::<&str, usize>::new();
    let mut skipped_modules = BTreeMap::<&str, usize>::new();
    let mut skipped = BTreeMap::<&str, usize>::new();
    let mut out_of_scope = BTreeMap::<&str, usize>::new();
    for r in reports {
        for (k, n) in &r.rewrites {
            *rewrites.entry(k.as_str()).or_default() += n;
        }
        for (k, n) in &r.run {
            *run.entry(*k).or_default() += n;
        }
        for (k, n) in &r.skipped_modules {
            *skipped_modules.entry(k.as_str()).or_default() += n;
        }
        for (k, n) in &r.skipped {
            *skipped.entry(k.as_str()).or_default() += n;
        }
        for (k, n) in &r.out_of_scope {
            *out_of_scope.entry(*k).or_default() += n;
        }
    }
    let modules: usize = reports.iter().map(|r| r.modules).sum();
    let commands: usize = run.values().sum();
    let failures: usize = reports.iter().map(|r| r.failures.len()).sum();
    println!();
    println!("files: {} run, {} skipped whole", reports.len(), skipped_files.len());
    println!("modules compiled on both engines: {modules}; as the pool rewrote them:");
    print_counts(&rewrites);
    println!("commands run on both and compared: {commands}");
    print_counts(&run);
    println!("files skipped whole:");
    for (file, reason) in skipped_files {
        println!("  {file}: {reason}");
    }
    println!("modules skipped, by reason: {}", skipped_modules.values().sum::<usize>());
    print_counts(&skipped_modules);
    println!("commands skipped, by reason: {}", skipped.values().sum::<usize>());
    print_counts(&skipped);
    println!("not run, out of scope (they check validation and linking, not running code):");
    print_counts(&out_of_scope);
    println!("failures: {failures}");
}

fn print_counts(counts: &BTreeMap<&str, usize>) {
    let mut counts: Vec<_> = counts.iter().collect();
    counts.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    for (what, n) in counts {
        println!("  {n:>7}  {what}");
    }
}

/// The self-check's module: one function per kind of command, each with
/// a wrong "rewrite" the comparison must catch.
const CHECK_MODULE: &str = r#"(module
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "nan") (param f32) (result f32) (f32.div (local.get 0) (local.get 0)))
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func $deep (export "deep") (call $deep))
  (memory 1)
  (func (export "fill") (param i32 i32) (memory.fill (local.get 0) (i32.const 7) (local.get 1)))
  (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0))))"#;

const CHECK_COMMANDS: &str = r#"
(assert_return (invoke "add" (i32.const 2) (i32.const 3)) (i32.const 5))
(assert_return (invoke "nan" (f32.const 0)) (f32.const nan:canonical))
(assert_trap (invoke "div" (i32.const 1) (i32.const 0)) "integer divide by zero")
(assert_exhaustion (invoke "deep") "call stack exhausted")
(invoke "fill" (i32.const 4095) (i32.const 2))
(assert_return (invoke "load" (i32.const 4096)) (i32.const 7))
"#;

/// Checks that the comparison passes the pool's rewrite of a small script
/// and catches each of several wrong rewrites of it, at the command it
/// breaks. The problems found (none if it works).
fn self_check(engines: &Engines) -> Vec<String> {
    let script = format!("{CHECK_MODULE}{CHECK_COMMANDS}");
    let mut problems = Vec::new();
    let pool = |bytes: &[u8]| pool_code(bytes, MAX_MEMORY);
    let report = run_script("self-check.wast", &script, engines, &pool);
    if !report.failures.is_empty() || report.commands_run() != 6 || report.modules != 1 {
        problems.push(format!(
            "  the pool's rewrite: expected 6 commands run and no failure, got {} run and {:?}",
            report.commands_run(),
            report.failures
        ));
    }
    // Each wrong rewrite, and the command whose line must be reported.
    let wrong = [
        ("i32.add", "i32.sub", "(invoke \"add\""),
        ("(f32.div (local.get 0) (local.get 0))", "(f32.const nan:0x200000)", "(invoke \"nan\""),
        ("(i32.div_s (local.get 0) (local.get 1))", "(unreachable)", "(invoke \"div\""),
        ("(call $deep)", "(nop)", "(invoke \"deep\""),
        ("(i32.const 7)", "(i32.const 8)", "(invoke \"load\""),
    ];
    for (from, to, command) in wrong {
        assert!(CHECK_MODULE.contains(from), "the self-check's module has no {from}");
        let code = wat::parse_str(CHECK_MODULE.replace(from, to)).map_err(|e| e.to_string());
        let rewrite = |_: &[u8]| code.clone().map(|code| PoolCode { code, reset: Ok(false) });
        let report = run_script("self-check.wast", &script, engines, &rewrite);
        let caught = report.failures.len() == 1 && report.failures[0].contains(command);
        if !caught {
            problems.push(format!(
                "  a rewrite turning {from} into {to}: expected one failure at {command}, got {:?}",
                report.failures
            ));
        }
    }
    // A rewrite that makes invalid code is caught where the module is.
    let broken = |_: &[u8]| -> Result<PoolCode, String> {
        Ok(PoolCode { code: b"\0asm\x01\0\0\0\x01".to_vec(), reset: Ok(false) })
    };
    let report = run_script("self-check.wast", &script, engines, &broken);
    if report.failures.len() != 1 || !report.failures[0].contains("does not compile") {
        problems.push(format!("  a rewrite making invalid code: expected one failure, got {:?}", report.failures));
    }
    problems
}
