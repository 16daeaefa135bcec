;; prelude: memory abi alloc ok
;; Calls the host's `send` in an endless loop.
(import "wasmpool" "send" (func $send (param i32 i32) (result i32)))
(func (export "wasmpool_task_attack") (param i32 i32) (result i32)
  (loop $again
    (drop (call $send (i32.const 0) (i32.const 8)))
    (br $again))
  i32.const 0)
(@custom "wasmpool.tasks" "\01\06attack\00\02()\00")
