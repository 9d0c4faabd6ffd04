def main() -> None:
    print("roomd")
