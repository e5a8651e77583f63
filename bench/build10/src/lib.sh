greet() {
    cat /opt/app/data/greeting.txt
    echo "mode: $MODE, args: $*"
}
