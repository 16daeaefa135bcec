;; prelude: memory abi alloc ok
;; Each call recurses with a growing argument, forever.
(func $down (param i64) (result i64)
  (i64.add (i64.const 1) (call $down (i64.add (local.get 0) (i64.const 1)))))
(func (export "wasmpool_task_attack") (param i32 i32) (result i32)
  (drop (call $down (i64.const 0)))
  i32.const 0)
(@custom "wasmpool.tasks" "\01\06attack\00\02()\00")
