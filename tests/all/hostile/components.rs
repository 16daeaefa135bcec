//! Hostile task components: components of the `wasmpool:task` world
//! (tasks written in Python are such components) that attack the pool
//! through what a component hands back (results, exception texts, the
//! task list, messages), its memories, and the WASI it imports. Each runs
//! in thread workers and in worker processes, as the core-module cases of
//! `mod.rs` do, and checks that the pool serves on.
//!
//! The components are written in the component model's text format around
//! one core module (or two), laid out by hand the way the canonical ABI
//! lays out the world's types: [`TaskComponent`] builds them.

use super::{KINDS, MAX_MEMORY, MAX_OUTPUT, SLACK, abi_violation, deadline, hostile_pool, module_error};
use std::fmt::Write as _;
use std::time::Instant;
use wasmpool::{Error, Event, JsonEvent, LimitExceeded, ModuleError, PoolBuilder, TaskFailure, WorkerKind};

/// Where the describe and call results live in the core module's memory.
const DESCRIBE_AREA: u32 = 1024;
const TASKS_AT: u32 = 2048;
const NAMES_AT: u32 = 4096;
const OK_AREA: u32 = 512;
const OK_TEXT: u32 = 600;
/// Where the attack's own result area goes.
const ATTACK_AREA: u32 = 768;
/// Where big payloads start (page 1).
const BIG_AT: u32 = 65536;

/// The bytes `bytes` as a WAT data string.
fn data_string(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "\\{b:02x}");
        s
    })
}

/// Little-endian `u32`s as bytes.
fn words(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A task component with the tasks `attack` and `ok` (which returns 42);
/// its start (`call("", start)`) answers as `ok` does (or runs the attack,
/// [`start_attacks`](TaskComponent::start_attacks)).
struct TaskComponent {
    /// Component-level imports (WAT), with the core functions lowered from
    /// them (`(core func $name (canon lower ...))`) for the core module's
    /// `env` imports.
    imports: String,
    /// The core module's imports from `env` (WAT fields).
    core_imports: String,
    /// The `env` instance the core module is instantiated with.
    env: String,
    /// Memory pages of the core module.
    pages: u32,
    /// The core module's `$attack` function: `(func $attack (result i32) ...)`,
    /// returning the address of a `result<string, call-error>`.
    attack: String,
    /// Further core module fields (data segments).
    extra: String,
    /// The task names `describe` reports (default: attack, ok).
    names: Vec<String>,
    /// Whether the start (`call("", …)`) runs the attack instead of
    /// answering as `ok` does.
    start_attacks: bool,
}

impl TaskComponent {
    fn new(attack: &str) -> Self {
        TaskComponent {
            imports: String::new(),
            core_imports: String::new(),
            env: String::new(),
            pages: 1,
            attack: attack.to_owned(),
            extra: String::new(),
            names: vec!["attack".into(), "ok".into()],
            start_attacks: false,
        }
    }

    fn start_attacks(mut self) -> Self {
        self.start_attacks = true;
        self
    }

    fn pages(mut self, pages: u32) -> Self {
        self.pages = pages;
        self
    }

    fn extra(mut self, extra: &str) -> Self {
        self.extra.push_str(extra);
        self
    }

    fn names(mut self, names: &[&str]) -> Self {
        self.names = names.iter().map(|n| n.to_string()).collect();
        self
    }

    /// Imports `func` (`core_type`, e.g. `(param i32)`) as `env.$name`,
    /// lowered from `component_func` (e.g. `$clock "now"`) with `options`.
    fn import(mut self, imports: &str, lowered: &[(&str, &str, &str)]) -> Self {
        self.imports.push_str(imports);
        for (name, core_type, lower) in lowered {
            let _ = writeln!(self.imports, "(core func ${name} (canon lower {lower}))");
            let _ = writeln!(self.core_imports, "(import \"env\" \"{name}\" (func ${name} {core_type}))");
            let _ = write!(self.env, "(export \"{name}\" (func ${name}))");
        }
        self
    }

    /// The describe data: a (ptr, len) pair at [`DESCRIBE_AREA`], the
    /// records at [`TASKS_AT`] (name, params, returns, doc: four (ptr, len)
    /// pairs each), the names at [`NAMES_AT`].
    fn describe_data(&self) -> String {
        let mut names = Vec::new();
        let mut records = Vec::new();
        let any = NAMES_AT;
        names.extend_from_slice(b"any");
        for name in &self.names {
            let at = NAMES_AT + names.len() as u32;
            names.extend_from_slice(name.as_bytes());
            records.extend(words(&[at, name.len() as u32, 0, 0, any, 3, any, 0]));
        }
        format!(
            "(data (i32.const {DESCRIBE_AREA}) \"{}\")\n(data (i32.const {TASKS_AT}) \"{}\")\n(data (i32.const {NAMES_AT}) \"{}\")",
            data_string(&words(&[TASKS_AT, self.names.len() as u32])),
            data_string(&records),
            data_string(&names),
        )
    }

    fn build(&self) -> Vec<u8> {
        let ok_result = data_string(&[words(&[0, OK_TEXT, 2])].concat());
        let core = format!(
            r#"(core module $m
  (import "env" "memory" (memory {pages}))
  {core_imports}
  (export "memory" (memory 0))
  (global $heap (mut i32) (i32.const 32768))
  (func (export "realloc") (param i32 i32 i32 i32) (result i32)
    (local $at i32)
    global.get $heap
    local.get 2
    i32.add
    i32.const -1
    i32.add
    i32.const 0
    local.get 2
    i32.sub
    i32.and
    local.tee $at
    local.get 3
    i32.add
    global.set $heap
    local.get $at)
  (func (export "describe") (result i32) i32.const {DESCRIBE_AREA})
  (func (export "call") (param $name i32) (param $name_len i32) (param i32 i32) (result i32)
    ;; "" (the start, called once per new instance) and "ok" answer 42
    ;; (the start runs the attack instead if `start_attacks`).
    local.get $name_len
    i32.eqz
    {start_answers}
    i32.and
    local.get $name_len
    i32.const 2
    i32.eq
    i32.or
    if (result i32)
      i32.const {OK_AREA}
    else
      call $attack
    end)
  {attack}
  (data (i32.const {OK_AREA}) "{ok_result}")
  (data (i32.const {OK_TEXT}) "42")
  {describe}
  {extra}
)"#,
            core_imports = self.core_imports,
            pages = self.pages,
            attack = self.attack,
            describe = self.describe_data(),
            extra = self.extra,
            start_answers = if self.start_attacks { "i32.const 0" } else { "i32.const 1" },
        );
        let text = format!(
            r#"(component $root
  (core module $memory_module (memory (export "memory") {pages}))
  (core instance $memory_instance (instantiate $memory_module))
  (alias core export $memory_instance "memory" (core memory $memory))
  {imports}
  {core}
  (core instance $env (export "memory" (memory $memory)) {env})
  (core instance $i (instantiate $m (with "env" (instance $env))))
  (type $param (record (field "name" string) (field "ty" string)))
  (type $task-info (record (field "name" string) (field "params" (list $param)) (field "returns" string) (field "doc" string)))
  (type $exception (record (field "message" string) (field "location" string) (field "traceback" string)))
  (type $call-error (variant (case "no-such-task" string) (case "bad-arguments" string) (case "raised" $exception) (case "bad-result" string)))
  (type $call-result (result string (error $call-error)))
  (func $describe (result (list $task-info))
    (canon lift (core func $i "describe") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (func $call (param "name" string) (param "args-json" string) (result $call-result)
    (canon lift (core func $i "call") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (instance $tasks
    (export "param" (type $param))
    (export "task-info" (type $task-info))
    (export "exception" (type $exception))
    (export "call-error" (type $call-error))
    (export "describe" (func $describe))
    (export "call" (func $call)))
  (export "wasmpool:task/tasks@0.1.0" (instance $tasks))
)"#,
            imports = self.imports,
            core = core,
            env = self.env,
            pages = self.pages,
        );
        wat::parse_str(&text).unwrap_or_else(|e| panic!("the hostile component assembles: {e}\n{text}"))
    }
}

/// An attack returning the `result<string, call-error>` laid out in
/// `area` (at [`ATTACK_AREA`]).
fn returning(area: &[u32]) -> (String, String) {
    (
        format!("(func $attack (result i32) i32.const {ATTACK_AREA})"),
        format!("(data (i32.const {ATTACK_AREA}) \"{}\")", data_string(&words(area))),
    )
}

/// Runs `attack` of `component` in a pool of `kind` (set up further by
/// `configure`), checks its failure with `expected`, and that the pool
/// then serves `ok`.
fn attack_component(
    kind: WorkerKind,
    name: &str,
    component: &TaskComponent,
    configure: impl Fn(PoolBuilder) -> PoolBuilder,
    expected: impl Fn(&TaskFailure) -> bool,
) {
    let pool = configure(hostile_pool(kind, component.build()))
        .build()
        .unwrap_or_else(|e| panic!("{name} ({kind:?}): the pool should build: {e}"));
    let start = Instant::now();
    let error = pool.task("attack").unwrap().json().unwrap().call("null").expect_err("the attack should fail");
    let elapsed = start.elapsed();
    let Error::Task(error) = error else { panic!("{name} ({kind:?}): not a task error: {error}") };
    assert!(expected(&error.failure), "{name} ({kind:?}): unexpected failure: {}", error.failure);
    assert!(elapsed < deadline() + SLACK, "{name} ({kind:?}): the error took {elapsed:?}");
    for _ in 0..2 {
        let ok = pool.task("ok").unwrap().json().unwrap().call("null");
        assert_eq!(ok.unwrap_or_else(|e| panic!("{name} ({kind:?}): after the attack: {e}")), "42");
    }
}

/// Builds a pool of `component`, which must be refused with `expected`.
fn refuse_component(kind: WorkerKind, name: &str, component: &TaskComponent, expected: impl Fn(&Error) -> bool) {
    let start = Instant::now();
    let error = hostile_pool(kind, component.build()).build().expect_err("the component should be refused");
    assert!(expected(&error), "{name} ({kind:?}): unexpected error: {error}");
    assert!(start.elapsed() < deadline() + SLACK, "{name} ({kind:?}): the refusal took {:?}", start.elapsed());
}

fn output_limit(failure: &TaskFailure, what: &str, len: Option<u64>) -> bool {
    *failure == TaskFailure::Limit(LimitExceeded::Output { what: what.into(), len, limit: MAX_OUTPUT as u64 })
}

#[test]
fn a_harmless_component_serves_in_both_kinds() {
    let component = TaskComponent::new("(func $attack (result i32) i32.const 512)");
    for kind in KINDS {
        let pool = hostile_pool(kind, component.build()).build().unwrap();
        let names: Vec<_> = pool.tasks().iter().map(|t| t.name.clone()).collect();
        assert_eq!(names, ["attack", "ok"], "{kind:?}");
        assert_eq!(pool.task("attack").unwrap().json().unwrap().call("null").unwrap(), "42", "{kind:?}");
    }
}

each_kind! {
    fn a_result_over_the_output_limit_is_refused_with_its_length(kind) {
        // 1.5 MiB of NUL characters: valid UTF-8, over the 1 MiB limit,
        // within what the host copies.
        let len = 3 << 19;
        let (attack, area) = returning(&[0, BIG_AT, len]);
        let component = TaskComponent::new(&attack).extra(&area).pages(32);
        attack_component(kind, "big_result", &component, |b| b, |f| output_limit(f, "result", Some(len.into())));
    }
}

each_kind! {
    fn a_result_too_long_to_copy_is_refused_before_it_is_copied(kind) {
        // 12 MiB: past what the host copies from one call (the 1 MiB
        // output limit plus 1 MiB, or the message limit if larger).
        let (attack, area) = returning(&[0, BIG_AT, 12 << 20]);
        let component = TaskComponent::new(&attack).extra(&area).pages(200);
        attack_component(kind, "huge_result", &component, |b| b, |f| output_limit(f, "result", None));
    }
}

each_kind! {
    fn a_no_such_task_answer_of_a_megabyte_is_cut(kind) {
        // `no-such-task` with 1 MiB of text: the name is cut in the message.
        let (attack, area) = returning(&[1, 0, BIG_AT, 1 << 20]);
        let component = TaskComponent::new(&attack).extra(&area).pages(32);
        attack_component(kind, "huge_no_such_task", &component, |b| b, |f| {
            abi_violation(kind, f, "more bytes cut") && f.to_string().len() < 1024
        });
    }
}

each_kind! {
    fn an_exception_of_megabytes_is_cut_as_a_panic_is(kind) {
        // raised({message: 1 MiB, location: 512 KiB, traceback: 256 KiB}).
        let (attack, area) =
            returning(&[1, 2, BIG_AT, 1 << 20, BIG_AT, 1 << 19, BIG_AT, 1 << 18]);
        let component = TaskComponent::new(&attack).extra(&area).pages(32);
        attack_component(kind, "huge_exception", &component, |b| b, |f| {
            matches!(f, TaskFailure::Panic { message, location }
                if message.len() < 65 * 1024 && message.ends_with("more bytes cut)")
                    && location.len() < 5 * 1024 && location.ends_with("more bytes cut)"))
        });
    }
}

each_kind! {
    fn a_task_list_of_hundreds_of_megabytes_by_aliasing_is_refused_at_load(kind) {
        // 10,000 task records whose docs all point at the same 64 KiB:
        // 655 MB if copied whole.
        let mut records = Vec::new();
        for _ in 0..10_000u32 {
            records.extend(words(&[NAMES_AT + 3, 2, 0, 0, NAMES_AT, 3, BIG_AT, 65536]));
        }
        let extra = format!(
            "(data (i32.const {}) \"{}\")",
            2 * BIG_AT,
            data_string(&records),
        );
        let attack = "(func $attack (result i32) i32.const 512)";
        let mut component = TaskComponent::new(attack).pages(64);
        // The describe area points at the big list instead.
        component.names = vec!["ok".into()];
        let component = component.extra(&extra).extra(&format!(
            "(func $unused) (data (i32.const {}) \"{}\")",
            DESCRIBE_AREA,
            data_string(&words(&[2 * BIG_AT, 10_000])),
        ));
        refuse_component(kind, "describe_bomb", &component, |e| {
            matches!(module_error(e), Some(ModuleError::Limit(LimitExceeded::Output { what, len: None, .. }))
                if what == "task list")
        });
    }
}

each_kind! {
    fn a_task_name_the_abi_would_refuse_is_refused_at_load(kind) {
        for names in [&["ok", "bad name"][..], &["ok", "ok"], &["ok", &"x".repeat(300)]] {
            let component = TaskComponent::new("(func $attack (result i32) i32.const 512)").names(names);
            refuse_component(kind, "bad_names", &component, |e| {
                let text = e.to_string();
                (text.contains("task name") || text.contains("twice")) && text.len() < 2048
            });
        }
    }
}

each_kind! {
    fn two_memories_share_one_memory_limit(kind) {
        // Each of two core modules grows its own memory to 10 MiB: the
        // second growth passes the 16 MiB that the instance's memories
        // may hold together.
        let grower = r#"(core module $other
              (memory (export "memory") 1)
              (func (export "grow") (result i32) i32.const 159 memory.grow))
            (core instance $other_instance (instantiate $other))"#;
        let attack = r#"(func $attack (result i32)
              i32.const 159
              memory.grow
              i32.const -1
              i32.eq
              if unreachable end
              call $grow
              i32.const -1
              i32.eq
              if unreachable end
              i32.const 512)"#;
        let mut component = TaskComponent::new(attack);
        component.imports.push_str(grower);
        component.imports.push_str("\n(core func $grow (alias core export $other_instance \"grow\"))\n");
        component.core_imports.push_str("(import \"env\" \"grow\" (func $grow (result i32)))");
        component.env.push_str("(export \"grow\" (func $grow))");
        attack_component(kind, "two_memories", &component, |b| b, |f| {
            matches!(f, TaskFailure::Limit(LimitExceeded::Memory { requested, limit })
                if *limit == MAX_MEMORY as u64 && *requested == 20 << 20)
        });
    }
}

/// The WAT of an import of `wasi:clocks/wall-clock@VERSION` and its `now`
/// lowered into the core module (`now(retptr)`).
fn wall_clock_import(version: &str) -> String {
    format!(
        r#"(import "wasi:clocks/wall-clock@{version}" (instance $clock
             (type $fields (record (field "seconds" u64) (field "nanoseconds" u32)))
             (export "datetime" (type $datetime (eq $fields)))
             (export "now" (func (result $datetime)))))"#
    )
}

each_kind! {
    fn a_clock_at_another_0_2_version_is_still_not_granted(kind) {
        for version in ["0.2.0", "0.2.3", "0.2.12"] {
            let component = TaskComponent::new(
                "(func $attack (result i32) i32.const 0 call $now i32.const 512)",
            )
            .import(&wall_clock_import(version), &[("now", "(param i32)", "(func $clock \"now\") (memory $memory)")]);
            attack_component(kind, "wall_clock", &component, |b| b, |f| {
                matches!(f, TaskFailure::NotGranted { capability: wasmpool::Capability::WallClock, .. })
            });
        }
    }
}

each_kind! {
    fn exit_is_the_tasks_failure(kind) {
        let component = TaskComponent::new("(func $attack (result i32) i32.const 1 call $exit i32.const 512)")
            .import(
                r#"(import "wasi:cli/exit@0.2.0" (instance $exit
                     (export "exit" (func (param "status" (result))))))"#,
                &[("exit", "(param i32)", "(func $exit \"exit\")")],
            );
        attack_component(kind, "exit", &component, |b| b, |f| {
            *f == TaskFailure::Failed(
                "the task exited the interpreter with failure (os._exit or a WASI exit: it returned no result)".into(),
            )
        });
    }
}

each_kind! {
    fn a_message_over_the_message_limit_is_refused_before_it_is_copied(kind) {
        let component = TaskComponent::new(&format!(
            "(func $attack (result i32) i32.const {BIG_AT} i32.const {} call $send i32.const 512)",
            3 << 19
        ))
        .pages(32)
        .import(
            r#"(import "wasmpool:task/host@0.1.0" (instance $host
                 (export "send" (func (param "message" string)))))"#,
            &[("send", "(param i32 i32)", "(func $host \"send\") (memory $memory)")],
        );
        attack_component(kind, "big_message", &component, |b| b.max_message(1 << 20), |f| {
            *f == TaskFailure::Limit(LimitExceeded::Output {
                what: "message".into(),
                len: Some(3 << 19),
                limit: 1 << 20,
            })
        });
    }
}

each_kind! {
    fn a_message_that_is_not_json_is_its_own_error_and_the_task_goes_on(kind) {
        // `attack` sends text that is no JSON (with a terminal escape in
        // it), then a valid message, then answers as `ok` does.
        let junk = b"{\"clear\": \x1b[2J";
        let component = TaskComponent::new(&format!(
            "(func $attack (result i32) i32.const {BIG_AT} i32.const {} call $send              i32.const {} i32.const 4 call $send i32.const {OK_AREA})",
            junk.len(),
            BIG_AT + 64
        ))
        .pages(2)
        .extra(&format!(
            "(data (i32.const {BIG_AT}) \"{}\") (data (i32.const {}) \"[1 ]\")",
            data_string(junk),
            BIG_AT + 64
        ))
        .import(
            r#"(import "wasmpool:task/host@0.1.0" (instance $host
                 (export "send" (func (param "message" string)))))"#,
            &[("send", "(param i32 i32)", "(func $host \"send\") (memory $memory)")],
        );
        let pool = hostile_pool(kind, component.build()).build().unwrap();
        let (task, events) = pool.task("attack").unwrap().json().unwrap().listened(8);
        assert_eq!(task.call("null").unwrap(), "42", "{kind:?}");
        match events.try_next() {
            Some(JsonEvent::Message { index: 0, message: Err(error) }) => {
                assert!(matches!(error.failure, TaskFailure::DecodeMessage { .. }), "{kind:?}: {error}");
                assert!(error.to_string().contains("not JSON"), "{kind:?}: {error}");
            }
            other => panic!("{kind:?}: expected the junk message's error, got {other:?}"),
        }
        assert_eq!(events.try_next(), Some(JsonEvent::Message { index: 0, message: Ok("[1]".into()) }), "{kind:?}");
        assert_eq!(events.try_next(), None);
        // An exchange gets the same, as its message type's error.
        let mut exchange = pool.exchange::<serde_json::Value, u32>();
        exchange.start_json("attack", "null").unwrap();
        let got: Vec<_> = (&mut exchange).collect();
        assert!(matches!(&got[0], Event::Message { task: 0, message: Err(_) }), "{kind:?}: {got:?}");
        assert_eq!(got[1], Event::Message { task: 0, message: Ok(serde_json::json!([1])) }, "{kind:?}");
        assert_eq!(got[2], Event::Finished { task: 0, result: Ok(42) }, "{kind:?}");
        assert_eq!(pool.task("ok").unwrap().json().unwrap().call("null").unwrap(), "42");
    }
}

each_kind! {
    fn an_init_task_that_never_returns_fails_the_build_at_its_deadline(kind) {
        // `attack` loops forever: as the init task, it would hold every new
        // instance. The build runs it once, under the load limit (the pool's
        // deadline here), and fails, naming it.
        let component = TaskComponent::new("(func $attack (result i32) (loop $spin br $spin) i32.const 512)");
        let start = Instant::now();
        let error = hostile_pool(kind, component.build())
            .init_task_json("attack", "[]")
            .build()
            .expect_err("an init task that never returns fails the build");
        let elapsed = start.elapsed();
        let text = error.to_string();
        assert!(text.contains("attack") && text.contains("deadline"), "{kind:?}: {text}");
        assert!(elapsed < deadline() + SLACK, "{kind:?}: the refusal took {elapsed:?}");
        // The same component without the init serves.
        let pool = hostile_pool(kind, component.build()).build().unwrap();
        assert_eq!(pool.task("ok").unwrap().json().unwrap().call("null").unwrap(), "42");
    }
}

each_kind! {
    fn an_import_outside_the_linked_wasi_is_refused_at_load(kind) {
        let component = TaskComponent::new("(func $attack (result i32) call $get drop i32.const 512)").import(
            r#"(import "wasi:http/outgoing-handler@0.2.0" (instance $http
                 (export "get" (func (result u32)))))"#,
            &[("get", "(result i32)", "(func $http \"get\")")],
        );
        refuse_component(kind, "http_import", &component, |e| e.to_string().contains("wasi:http/outgoing-handler"));
    }
}

/// Imports of `wasi:sockets` at `version` to look a name up: the network
/// (`instance-network`) and `resolve-addresses`, lowered into the core
/// module as `network() -> handle` and `lookup(handle, name, len, retptr)`.
fn name_lookup_imports(version: &str) -> String {
    let errors = [
        "unknown",
        "access-denied",
        "not-supported",
        "invalid-argument",
        "out-of-memory",
        "timeout",
        "concurrency-conflict",
        "not-in-progress",
        "would-block",
        "invalid-state",
        "new-socket-limit",
        "address-not-bindable",
        "address-in-use",
        "remote-unreachable",
        "connection-refused",
        "connection-reset",
        "connection-aborted",
        "datagram-too-large",
        "name-unresolvable",
        "temporary-resolver-failure",
        "permanent-resolver-failure",
    ]
    .map(|e| format!("\"{e}\""))
    .join(" ");
    format!(
        r#"(import "wasi:sockets/network@{version}" (instance $network
             (export "network" (type (sub resource)))
             (type $codes (enum {errors}))
             (export "error-code" (type (eq $codes)))))
           (alias export $network "network" (type $net))
           (alias export $network "error-code" (type $error-code))
           (import "wasi:sockets/instance-network@{version}" (instance $instance_network
             (alias outer $root $net (type $n))
             (export "instance-network" (func (result (own $n))))))
           (import "wasi:sockets/ip-name-lookup@{version}" (instance $lookup
             (alias outer $root $net (type $n))
             (alias outer $root $error-code (type $e))
             (export "resolve-address-stream" (type $stream (sub resource)))
             (export "resolve-addresses" (func (param "network" (borrow $n)) (param "name" string)
               (result (result (own $stream) (error $e)))))))"#
    )
}

each_kind! {
    fn sockets_at_any_0_2_version_are_linked_and_refused(kind) {
        // CPython imports wasi:sockets (at 0.2.0), so the linker holds it;
        // every use is refused. A name lookup answers an error, never an
        // address: the attack reports the error's code as its own failure.
        for version in ["0.2.0", "0.2.3", "0.2.12"] {
            let (_, area) = returning(&[1, 3, BIG_AT, 6]);
            let attack = format!(
                r#"(func $attack (result i32)
                     call $network
                     i32.const {BIG_AT} i32.const 9 i32.const 64
                     call $lookup
                     ;; result<own<stream>, error-code> at 64: 1 = err, its code at 68
                     i32.const 64 i32.load8_u
                     i32.const 1 i32.eq
                     if (result i32)
                       i32.const {BIG_AT}
                       i32.const 64 i32.load8_u offset=4
                       i32.const 48 i32.add
                       i32.store8 offset=5
                       i32.const {ATTACK_AREA}
                     else
                       i32.const 512
                     end)
                   (data (i32.const {BIG_AT}) "localhost")"#
            );
            let component = TaskComponent::new(&attack).extra(&area).pages(2).import(
                &name_lookup_imports(version),
                &[
                    ("network", "(result i32)", "(func $instance_network \"instance-network\")"),
                    ("lookup", "(param i32 i32 i32 i32)", "(func $lookup \"resolve-addresses\") (memory $memory)"),
                ],
            );
            attack_component(kind, "name_lookup", &component, |b| b, |f| {
                // "local" then the error code's number as one digit past '0':
                // access-denied (1) or permanent-resolver-failure (20, '0'+20 = 'D').
                matches!(f, TaskFailure::Failed(code) if code == "local1" || code == "localD")
            });
        }
    }
}

/// Imports of `wasi:io/poll` and `wasi:clocks/monotonic-clock` (0.2.0) to
/// sleep: `subscribe-duration` and `pollable.block`.
const SLEEP_IMPORTS: &str = r#"
  (import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type (sub resource)))
    (export "[method]pollable.block" (func (param "self" (borrow 0))))))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (alias outer $root $pollable (type $p))
    (export "subscribe-duration" (func (param "when" u64) (result (own $p))))))"#;

/// A component whose `attack` sleeps for an hour on a granted clock.
fn sleeper() -> TaskComponent {
    TaskComponent::new("(func $attack (result i32) i64.const 3600000000000 call $subscribe call $block i32.const 512)")
        .import(
            SLEEP_IMPORTS,
            &[
                ("subscribe", "(param i64) (result i32)", "(func $clock \"subscribe-duration\")"),
                ("block", "(param i32)", "(func $poll \"[method]pollable.block\")"),
            ],
        )
}

each_kind! {
    fn a_granted_sleep_ends_at_the_deadline(kind) {
        let grant = |b: PoolBuilder| b.wasi(wasmpool::WasiConfig::new().monotonic_clock());
        attack_component(kind, "sleep", &sleeper(), grant, |f| {
            matches!(f, TaskFailure::Limit(LimitExceeded::Deadline { .. }))
        });
    }
}

/// A task that changes state no export shows: a global of its core module
/// (not exported), and a byte of the memory another core instance defines
/// (the component's memory module). It returns the sum, as one digit.
fn hidden_state_component() -> TaskComponent {
    let text = 700;
    TaskComponent::new(&format!(
        r#"(global $count (mut i32) (i32.const 0))
  (func $attack (result i32)
    global.get $count
    i32.const 1
    i32.add
    global.set $count
    i32.const 40000
    i32.const 40000
    i32.load8_u
    i32.const 1
    i32.add
    i32.store8
    i32.const {text}
    global.get $count
    i32.const 40000
    i32.load8_u
    i32.add
    i32.const 48
    i32.add
    i32.store8
    i32.const {ATTACK_AREA})"#
    ))
    .extra(&format!("(data (i32.const {ATTACK_AREA}) \"{}\")", data_string(&words(&[0, text, 1]))))
}

#[test]
fn a_fresh_state_per_input_restores_what_no_export_shows() {
    // With a fresh state per input (one instance reset in place between
    // inputs, where this system can), every input sees 0 + 1 twice.
    for kind in KINDS {
        for reset in [true, false] {
            let pool = hostile_pool(kind, hidden_state_component().build()).reset_in_place(reset).build().unwrap();
            let attack = pool.task("attack").unwrap().json().unwrap();
            let results: Vec<String> = (0..6).map(|_| attack.call("null").unwrap()).collect();
            assert_eq!(results, ["2"; 6], "{kind:?}, reset in place: {reset}");
        }
        // The same component keeping its state shows what is restored.
        let pool = hostile_pool(kind, hidden_state_component().build())
            .instance_mode(wasmpool::InstanceMode::PerWorker)
            .build()
            .unwrap();
        let attack = pool.task("attack").unwrap().json().unwrap();
        let results: Vec<String> = (0..3).map(|_| attack.call("null").unwrap()).collect();
        assert_eq!(results, ["2", "4", "6"], "{kind:?}, kept");
    }
}

/// `component` carrying the start argument `payload` in its custom section
/// `wasmpool-start` (as a build of tasks written in Python carries the
/// module's source), once per payload.
fn with_start(mut component: Vec<u8>, payloads: &[&[u8]]) -> Vec<u8> {
    use wasm_encoder::Section;
    for payload in payloads {
        wasm_encoder::CustomSection { name: "wasmpool-start".into(), data: (*payload).into() }
            .append_to(&mut component);
    }
    component
}

each_kind! {
    fn a_start_argument_twice_or_not_text_is_refused(kind) {
        let component = TaskComponent::new("(func $attack (result i32) i32.const 512)").build();
        for (name, payloads) in [("twice", &[&b"a"[..], b"b"][..]), ("binary", &[&[0xff, 0xfe][..]])] {
            let start = Instant::now();
            let error = hostile_pool(kind, with_start(component.clone(), payloads)).build().expect_err(name);
            assert!(
                matches!(module_error(&error), Some(ModuleError::StartArgument(why)) if why.contains("wasmpool-start")),
                "{name} ({kind:?}): unexpected error: {error}"
            );
            assert!(start.elapsed() < deadline() + SLACK);
        }
        // One text argument: the component starts with it and serves.
        let pool = hostile_pool(kind, with_start(component, &[b"{\"source\": \"\"}"])).build().unwrap();
        assert_eq!(pool.task("ok").unwrap().json().unwrap().call("null").unwrap(), "42");
    }
}

each_kind! {
    fn a_start_that_raises_or_refuses_its_argument_fails_the_load_with_the_reason(kind) {
        // The start raises an exception of a megabyte (what a module's
        // top-level code does when it fails): refused with it, cut.
        let (attack, area) = returning(&[1, 2, BIG_AT, 1 << 20, BIG_AT, 5, BIG_AT, 5]);
        let component = TaskComponent::new(&attack).extra(&area).pages(32).start_attacks();
        refuse_component(kind, "start_raises", &component, |e| {
            matches!(module_error(e), Some(ModuleError::Instantiation(why))
                if why.contains("panicked") && why.len() < 256 << 10 && why.ends_with("more bytes cut)"))
        });
        // A start that says it has no such task is a component without a
        // start: fine with no argument, refused when it was given one.
        let (attack, area) = returning(&[1, 0, BIG_AT, 5]);
        let component = TaskComponent::new(&attack).extra(&area).pages(2).start_attacks();
        let pool = hostile_pool(kind, component.build()).build().expect("no start, no argument");
        assert_eq!(pool.task("ok").unwrap().json().unwrap().call("null").unwrap(), "42");
        let error = hostile_pool(kind, with_start(component.build(), &[b"x"])).build().expect_err("argument unread");
        assert!(
            matches!(module_error(&error), Some(ModuleError::Instantiation(why)) if why.contains("no task named")),
            "{kind:?}: unexpected error: {error}"
        );
    }
}
