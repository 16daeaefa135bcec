;; prelude: memory abi alloc ok
;; Reports a panic with pointers and lengths that make no sense, reports
;; another while "handling" it, then traps.
(import "wasmpool" "panic" (func $panic (param i32 i32 i32 i32 i32 i32)))
(func (export "wasmpool_task_attack") (param i32 i32) (result i32)
  (call $panic (i32.const -16) (i32.const -1) (i32.const 0xffff) (i32.const 0x7fffffff) (i32.const -1) (i32.const -1))
  (call $panic (i32.const 0) (i32.const 0x100000) (i32.const -1) (i32.const 4) (i32.const 7) (i32.const 9))
  unreachable)
(@custom "wasmpool.tasks" "\01\06attack\00\02()\00")
