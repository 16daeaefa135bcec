;; prelude: memory abi alloc ok
;; Grows memory one page at a time until refused, then traps, as a Rust
;; guest does when an allocation fails.
(func (export "wasmpool_task_attack") (param i32 i32) (result i32)
  (loop $more
    (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
  unreachable)
(@custom "wasmpool.tasks" "\01\06attack\00\02()\00")
