module github.com/logpipeline/log-processing-service

go 1.25

require (
	github.com/gorilla/websocket v1.5.3
	github.com/spf13/pflag v1.1.0
)
