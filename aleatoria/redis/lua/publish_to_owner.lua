-- uses: library streams
-- ARGV[2] a user, [3] the post. 1: posted to the user's daemon; 0: no live
-- daemon has the user; -1: its daemon lives but nothing heard the post.
return to_owner(ARGV[2], ARGV[3])
