from eset2fa.commands.entry import main

if __name__ == "__main__":
    main()
