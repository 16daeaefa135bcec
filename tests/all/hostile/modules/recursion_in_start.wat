;; prelude: memory abi alloc ok
;; The start function recurses without end.
(func $down (call $down))
(start $down)
