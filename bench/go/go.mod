module goro.example/bench

go 1.19
