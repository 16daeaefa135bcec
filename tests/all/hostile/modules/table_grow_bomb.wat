;; prelude: memory abi alloc ok
;; Grows a small table by ten million elements at run time, then traps.
(table $t 1 funcref)
(func (export "wasmpool_task_attack") (param i32 i32) (result i32)
  (if (i32.eq (table.grow $t (ref.null func) (i32.const 10000000)) (i32.const -1))
    (then unreachable))
  i32.const 0)
(@custom "wasmpool.tasks" "\01\06attack\00\02()\00")
