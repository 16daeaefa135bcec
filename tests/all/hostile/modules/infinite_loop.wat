;; prelude: memory abi alloc ok
;; The task `attack` loops forever: only the deadline can stop it.
(func (export "wasmpool_task_attack") (param i32 i32) (result i32)
  (loop $forever (br $forever))
  i32.const 0)
(@custom "wasmpool.tasks" "\01\06attack\00\02()\00")
