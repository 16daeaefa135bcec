;; prelude: memory abi alloc ok
;; Counts down from 2^63: with fuel metered, the budget ends it.
(func (export "wasmpool_task_attack") (param i32 i32) (result i32)
  (local $n i64)
  (local.set $n (i64.const 0x7fffffffffffffff))
  (loop $more
    (local.set $n (i64.sub (local.get $n) (i64.const 1)))
    (br_if $more (i64.ne (local.get $n) (i64.const 0))))
  i32.const 0)
(@custom "wasmpool.tasks" "\01\06attack\00\02()\00")
