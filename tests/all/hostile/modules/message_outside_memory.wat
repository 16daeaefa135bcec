;; prelude: memory abi alloc ok
;; Sends a message whose bytes lie past the end of memory.
(import "wasmpool" "send" (func $send (param i32 i32) (result i32)))
(func (export "wasmpool_task_attack") (param i32 i32) (result i32)
  (drop (call $send (i32.const 0xfff0) (i32.const 1000)))
  i32.const 0)
(@custom "wasmpool.tasks" "\01\06attack\00\02()\00")
