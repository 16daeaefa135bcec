;; prelude: abi alloc ok
;; Fails with an error message of 2 MiB (of zeros), all inside memory: the
;; host keeps the first 64 KiB.
(memory (export "memory") 40)
(data (i32.const 64) "\01\00\00\00\00\00\01\00\00\00\20\00")
(func (export "wasmpool_task_attack") (param i32 i32) (result i32) i32.const 64)
(@custom "wasmpool.tasks" "\01\06attack\00\02()\00")
