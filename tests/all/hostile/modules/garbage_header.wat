;; prelude: memory abi alloc ok
;; Returns a pointer to bytes that are not a result header: status 0x77777777.
(data (i32.const 64) "\77\77\77\77\77\77\77\77\77\77\77\77")
(func (export "wasmpool_task_attack") (param i32 i32) (result i32) i32.const 64)
(@custom "wasmpool.tasks" "\01\06attack\00\02()\00")
