;; prelude: memory abi alloc ok
;; Claims to send a message of 4 GiB.
(import "wasmpool" "send" (func $send (param i32 i32) (result i32)))
(func (export "wasmpool_task_attack") (param i32 i32) (result i32)
  (drop (call $send (i32.const 0) (i32.const -1)))
  i32.const 0)
(@custom "wasmpool.tasks" "\01\06attack\00\02()\00")
