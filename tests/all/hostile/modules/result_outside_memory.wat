;; prelude: memory abi alloc ok
;; A well-formed header whose payload lies past the end of memory.
(data (i32.const 64) "\00\00\00\00\f0\ff\00\00\20\00\00\00")
(func (export "wasmpool_task_attack") (param i32 i32) (result i32) i32.const 64)
(@custom "wasmpool.tasks" "\01\06attack\00\02()\00")
