;; prelude: memory abi alloc ok
;; A header claiming a 4 GiB result: refused before the host reads a byte.
(data (i32.const 64) "\00\00\00\00\00\00\00\00\ff\ff\ff\ff")
(func (export "wasmpool_task_attack") (param i32 i32) (result i32) i32.const 64)
(@custom "wasmpool.tasks" "\01\06attack\00\02()\00")
