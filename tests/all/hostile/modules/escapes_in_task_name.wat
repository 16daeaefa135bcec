;; prelude: memory abi alloc ok
;; A task record whose name is an escape sequence (names must be
;; identifiers, so the module is refused, and the refusal quotes it).
(func (export "wasmpool_task_x") (param i32 i32) (result i32) i32.const 0)
(@custom "wasmpool.tasks" "\01\05\1b[2Jx\00\02()\00")
