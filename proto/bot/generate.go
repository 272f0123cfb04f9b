package bot

//go:generate bash ../../cmd/protoc-gen-micro/gen.sh bot.proto notification.proto
