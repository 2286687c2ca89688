from vouch._main import main

main()
