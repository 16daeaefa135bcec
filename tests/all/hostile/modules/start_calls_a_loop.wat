;; prelude: memory abi alloc ok
;; The start function has no loop of its own: it calls one. Only a call
;; graph would tell that it never returns, so a call is enough to be
;; guarded.
(func $spin (loop $forever (br $forever)))
(func $start call $spin)
(start $start)
